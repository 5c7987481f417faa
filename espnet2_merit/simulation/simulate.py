"""Recipe stage 2b: noisy copies of a data directory at a target SNR.

    python -m espnet2_merit.bin.merit_simulate_noise --data_dir data/test1 \
        --noise_scp data/noise/test_seen.scp --snr -5 \
        --outdir data/test1_seen_snr-5 --seed 0 --nj 4

For each utterance of ``<data_dir>/wav.scp`` a noise file of the pool is drawn, fitted
to the speech (random circular shift, tiled or cut: :func:`fit_noise`) and added at
the SNR (``--snr``, or uniform in ``--snr_range LO HI``, rounded to 0.01 dB) by power
ratio (:func:`mix`). A noise recorded at another sampling rate is resampled to the
speech's rate and multi-channel audio is averaged to mono. Every random choice of an
utterance comes from a generator seeded by (--seed, utterance id), so the output does
not depend on --nj or on the order of the utterances, and the same options give
bit-identical files.

Reverberation (``--rir_scp POOL --rir_prob P``): an utterance is reverberant with
probability P; it is then convolved with an RIR drawn uniformly from the pool
(:func:`~espnet2_merit.simulation.mixing.reverberate`: direct path scaled to 1 and
aligned to delay 0, length kept) *before* the noise is added, then scaled back to
the dry speech's power (as ESPnet's enhancement preprocessor does: the room must
not change the speech level, a cue of emotion), and the SNR is measured against
the reverberant speech (as ESPnet does too: the noise is scaled to the speech that
reaches the microphone). The SE reference (spk1.scp, always written as
``wavs/<utt>_clean.wav`` for a reverberant utterance) is ``--rir_reference``:
``dry``, the dry speech (dereverberation + denoising), or ``early``, the speech
convolved with the direct path and the next ``--rir_early_ms`` ms of the RIR (late
reverberation and noise removed), scaled by the reverberant speech's gain so that
the direct path in the mixture has the reference's level. The reverberation draws (apply or not, which RIR) come from a second
generator seeded by (--seed, utterance id) alone, so adding --rir_scp never
changes an utterance's noise file, offset or SNR: a dry utterance is
bit-identical to the output without --rir_scp, a reverberant one has the same
noise segment, scaled to the reverberant speech. --rir_prob 0 gives the output of
no --rir_scp (plus an all-"-" utt2rir).

Outputs in --outdir:
  wav.scp      noisy mixtures (``wavs/<utt>.wav``)
  spk1.scp     SE references: the input file itself, or ``wavs/<utt>_clean.wav``
               when the reference differs from it (scaled, downmixed, or
               reverberant)
  utt2snr      target SNR in dB (against the reverberant speech if reverberant)
  utt2noise    "<utt> <noise_id> <offset>": noise sample (at the speech's rate) the
               fitted segment starts at
  utt2rir      "<utt> <rir_id>", or "<utt> -" for a dry utterance (only with
               --rir_scp)
  copies of emotion, emotion_attr, emotion_votes, utt2spk, utt2gender when present.

A mixture that would clip is scaled to a peak of 0.99, and its clean reference by the
same factor (written to ``wavs/<utt>_clean.wav``), so noisy - clean stays the scaled
noise (noisy - reverberant speech, for a reverberant utterance). Audio is 16-bit PCM unless --subtype FLOAT; an utterance whose 16-bit
quantisation would move its SNR by more than 0.05 dB (very quiet speech) is written
as FLOAT instead, and counted in the log.

Finished output is marked by ``<outdir>/.done`` holding a hash of the options and
the input lists: a re-run with the same ones skips, any change simulates again.
"""

import argparse
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
from tqdm import tqdm

from espnet2_merit.errors import MeritInputError
from espnet2_merit.simulation.mixing import REFERENCES, fit_noise, mix, reverberate
from espnet2_merit.utils.datadir import (
    PCM16_MAX,
    atomic_write_text,
    file_sha256,
    quantize_pcm16,
    read_audio,
    read_kaldi,
    read_sound_scp,
    write_audio,
    write_kaldi,
)

PROG = "merit_simulate_noise"
COPIED_FILES = (
    "emotion", "emotion_attr", "emotion_votes", "utt2spk", "utt2gender", "text"
)  # fmt: skip
OUTPUT_FILES = ("wav.scp", "spk1.scp", "utt2snr", "utt2noise", "utt2rir", *COPIED_FILES)
DRY = "-"  # utt2rir's value for an utterance left dry
PEAK = 0.99  # peak of a mixture that had to be scaled down
SNR_TOLERANCE_DB = 0.05  # largest SNR change 16-bit quantisation may cause
MAX_DRAWS = 10  # noise draws before a silent noise segment is an error
VERSION = 1  # bump when the output for the same options changes
logger = logging.getLogger(PROG)
_POOL: List[Tuple[str, str]] = []  # the noise pool, (noise_id, path), per process
_RIRS: List[Tuple[str, str]] = []  # the RIR pool, (rir_id, path), per process
_WORKER = [False]  # whether this process is one of --nj workers


def utt_rng(seed: int, utt: str, stream: str = "") -> np.random.Generator:
    """The random generator of one utterance: a function of (seed, utt) only.

    ``stream`` names an independent generator of the same utterance (``"rir"``:
    the reverberation draws), so that one kind of draw never shifts another's.
    """
    key = f"{seed}/{utt}" if not stream else f"{stream}:{seed}/{utt}"
    digest = hashlib.sha256(key.encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def to_mono(wav: np.ndarray) -> np.ndarray:
    """(T, C) -> (T,) by averaging the channels."""
    return wav[:, 0] if wav.shape[1] == 1 else wav.mean(axis=1)


def _resample(wav: np.ndarray, rate: int, fs: int) -> np.ndarray:
    """(N,) float64 audio at ``rate`` Hz -> at ``fs`` Hz (torchaudio)."""
    if rate == fs:
        return wav
    import torch
    import torchaudio

    if _WORKER[0]:  # one thread per process: --nj processes fill the cores
        torch.set_num_threads(1)
    return torchaudio.functional.resample(
        torch.from_numpy(wav), orig_freq=rate, new_freq=fs
    ).numpy()


@functools.lru_cache(maxsize=8)
def load_noise(path: str, noise_id: str, fs: int) -> np.ndarray:
    """(N,) mono float64 noise at ``fs`` Hz (resampled with torchaudio if needed);
    cached because a pool is usually far smaller than the corpus."""
    wav, rate = read_audio(path, f"noise '{noise_id}'")
    wav = to_mono(wav)
    if wav.shape[0] == 0:
        raise MeritInputError(f"noise '{noise_id}' ({path}) has no samples")
    return _resample(wav, rate, fs)


@functools.lru_cache(maxsize=64)
def load_rir(path: str, rir_id: str, fs: int) -> np.ndarray:
    """(K,) float64 room impulse response at ``fs`` Hz, its first channel only
    (averaging the microphones of a multi-channel RIR would smear its direct
    path); cached because RIRs are short and a pool is small.

    Raises:
        MeritInputError: the file is unreadable, empty, not finite or silent.
    """
    wav, rate = read_audio(path, f"RIR '{rir_id}'")
    wav = wav[:, 0]
    if wav.shape[0] == 0 or not np.all(np.isfinite(wav)):
        raise MeritInputError(f"RIR '{rir_id}' ({path}) is empty or not finite")
    if not np.any(wav):
        raise MeritInputError(f"RIR '{rir_id}' ({path}) is silent (all zeros)")
    return _resample(wav, rate, fs)


class Job(NamedTuple):
    utt: str
    clean_path: str
    outdir: str
    seed: int
    snr: Optional[float]
    snr_range: Optional[Tuple[float, float]]
    subtype: str
    rir_prob: float = 0.0
    rir_reference: str = "dry"
    rir_early_ms: float = 50.0


class Result(NamedTuple):
    utt: str
    noisy_path: str
    clean_path: str
    snr: float
    noise_id: str
    offset: int
    scaled: bool
    float_fallback: bool
    redraws: int
    rir_id: str = DRY


def _stored_snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    """SNR (dB) of the signals as stored; inf when the noise was rounded away."""
    with np.errstate(divide="ignore"):
        return 10 * np.log10(np.mean(clean**2) / np.mean((noisy - clean) ** 2))


def draw_rir(job: Job) -> Optional[Tuple[str, str]]:
    """The (rir_id, path) an utterance is convolved with, or None (dry): one
    uniform draw against --rir_prob, then one index draw if reverberant, from the
    utterance's "rir" generator (independent of its noise draws)."""
    if not _RIRS:
        return None
    rng = utt_rng(job.seed, job.utt, "rir")
    if not rng.random() < job.rir_prob:
        return None
    return _RIRS[int(rng.integers(len(_RIRS)))]


def simulate_utt(job: Job) -> Result:
    """Mix one utterance and write its audio; returns what the lists need."""
    what = f"utterance '{job.utt}'"
    wav, fs = read_audio(job.clean_path, what)
    clean = to_mono(wav)
    changed = wav.shape[1] != 1  # a downmixed reference must be written
    if clean.shape[0] == 0 or not np.any(clean):
        raise MeritInputError(
            f"{what}: clean speech {job.clean_path} is silent or empty: no SNR can "
            "be set"
        )
    speech, rir_id = clean, DRY  # what the noise is added (and scaled) to
    rir = draw_rir(job)
    if rir is not None:
        rir_id, rir_path = rir
        rir_wav = load_rir(rir_path, rir_id, fs)  # its errors name the file
        try:
            speech, clean = reverberate(
                clean,
                rir_wav,
                fs,
                reference=job.rir_reference,
                early_ms=job.rir_early_ms,
            )
        except MeritInputError as e:
            raise MeritInputError(f"{what}: RIR '{rir_id}' ({rir_path}): {e}") from None
        changed = True
    rng = utt_rng(job.seed, job.utt)
    snr = job.snr
    if snr is None:
        snr = round(float(rng.uniform(*job.snr_range)), 2)
    for draw in range(MAX_DRAWS):
        noise_id, noise_path = _POOL[int(rng.integers(len(_POOL)))]
        segment, offset = fit_noise(
            load_noise(noise_path, noise_id, fs), len(speech), rng
        )
        if np.any(segment):
            break  # a digitally silent stretch of a recording cannot be scaled
    else:
        raise MeritInputError(
            f"{what}: {MAX_DRAWS} noise draws gave only silent segments (last: "
            f"'{noise_id}' {noise_path}); check the noise pool"
        )
    noisy, _ = mix(speech, segment, snr)

    peak = float(np.abs(noisy).max())
    if rir is not None:  # an early reference may peak above the mixture
        peak = max(peak, float(np.abs(clean).max()))
    scaled = peak > PCM16_MAX
    if scaled:  # same factor for all, so noisy - speech is still the scaled noise
        noisy = noisy * (PEAK / peak)
        clean = clean * (PEAK / peak)
        speech = speech * (PEAK / peak)
        changed = True
    subtype = job.subtype
    float_fallback = False
    if subtype == "PCM_16":
        stored_noisy = quantize_pcm16(noisy) / 32768.0
        if rir is not None:  # the reverberant speech is not stored: as computed
            stored_speech = speech
        else:
            stored_speech = quantize_pcm16(clean) / 32768.0 if changed else clean
        if abs(_stored_snr(stored_speech, stored_noisy) - snr) > SNR_TOLERANCE_DB:
            subtype, float_fallback = "FLOAT", True

    out = Path(job.outdir) / "wavs"
    noisy_path = out / f"{job.utt}.wav"
    write_audio(noisy_path, noisy, fs, subtype)
    clean_path = job.clean_path
    if changed:
        clean_path = str(out / f"{job.utt}_clean.wav")
        write_audio(clean_path, clean, fs, subtype)
    return Result(
        job.utt,
        str(noisy_path),
        clean_path,
        snr,
        noise_id,
        offset,
        scaled,
        float_fallback,
        draw,
        rir_id,
    )


def _init(
    pool: List[Tuple[str, str]],
    worker: bool = False,
    rirs: Optional[List[Tuple[str, str]]] = None,
):
    _POOL[:] = pool
    _RIRS[:] = rirs or []
    _WORKER[0] = worker
    load_noise.cache_clear()
    load_rir.cache_clear()


# ------------------------------------------------------------------------ a set
def options_hash(args: argparse.Namespace, wav_scp: Path) -> str:
    """What the output depends on: options (not --nj) and the input lists."""
    spec = {
        "version": VERSION,
        "wav.scp": file_sha256(wav_scp),
        "noise_scp": file_sha256(args.noise_scp),
        "snr": args.snr,
        "snr_range": args.snr_range,
        "seed": args.seed,
        "subtype": args.subtype,
        **_rir_spec(args),
        "copied": {
            f: file_sha256(args.data_dir / f)
            for f in COPIED_FILES
            if (args.data_dir / f).is_file()
        },
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _rir_spec(args: argparse.Namespace) -> Dict:
    """The reverberation options of the hash; none without --rir_scp, so markers
    written before reverberation existed stay valid."""
    if args.rir_scp is None:
        return {}
    return {
        "rir_scp": file_sha256(args.rir_scp),
        "rir_prob": args.rir_prob,
        "rir_reference": args.rir_reference,
        "rir_early_ms": args.rir_early_ms,
    }


def _check_args(args: argparse.Namespace):
    if args.nj < 1:
        raise MeritInputError(f"--nj must be >= 1, got {args.nj}")
    if args.snr is not None and not np.isfinite(args.snr):
        raise MeritInputError(f"--snr must be a finite number, got {args.snr}")
    if args.snr_range is not None:
        lo, hi = args.snr_range
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
            raise MeritInputError(f"--snr_range: expected LO <= HI, got {lo} {hi}")
    if args.outdir.resolve() == args.data_dir.resolve():
        raise MeritInputError("--outdir must differ from --data_dir")
    if args.rir_scp is not None:
        if not 0.0 <= args.rir_prob <= 1.0:
            raise MeritInputError(f"--rir_prob must be in [0, 1], got {args.rir_prob}")
        if args.rir_reference not in REFERENCES:
            raise MeritInputError(
                f"--rir_reference {args.rir_reference!r} is not one of "
                f"{list(REFERENCES)}"
            )
        if not (np.isfinite(args.rir_early_ms) and args.rir_early_ms >= 0):
            raise MeritInputError(
                f"--rir_early_ms must be a number >= 0, got {args.rir_early_ms}"
            )
        if not args.rir_scp.is_file():
            raise MeritInputError(f"--rir_scp {args.rir_scp}: no such file")


def simulate(args: argparse.Namespace) -> Dict[str, Result]:
    """Simulate a whole set (or skip it if ``.done`` matches); returns the
    per-utterance results (empty when skipped)."""
    _check_args(args)
    wav_scp = args.data_dir / "wav.scp"
    if not wav_scp.is_file():
        raise MeritInputError(f"{wav_scp}: no such file (--data_dir needs wav.scp)")
    if not args.noise_scp.is_file():
        raise MeritInputError(f"--noise_scp {args.noise_scp}: no such file")
    done = args.outdir / ".done"
    digest = options_hash(args, wav_scp)
    if done.is_file() and done.read_text().strip() == digest:
        logger.info(f"{args.outdir}: done with the same options and inputs, skipped")
        return {}

    utts = read_sound_scp(wav_scp)
    if not utts:
        raise MeritInputError(f"{wav_scp}: no utterances")
    pool = read_kaldi(args.noise_scp)
    if not pool:
        raise MeritInputError(f"{args.noise_scp}: the noise pool is empty")
    pool = sorted(pool.items())
    rirs: List[Tuple[str, str]] = []
    if args.rir_scp is not None:
        rirs = sorted(read_kaldi(args.rir_scp).items())
        if not rirs:
            raise MeritInputError(f"{args.rir_scp}: the RIR pool is empty")
    _init(pool, rirs=rirs)

    # Start clean: files of an older run with other options must not linger.
    done.unlink(missing_ok=True)
    shutil.rmtree(args.outdir / "wavs", ignore_errors=True)
    for name in OUTPUT_FILES:
        (args.outdir / name).unlink(missing_ok=True)
    (args.outdir / "wavs").mkdir(parents=True)

    snr_range = tuple(args.snr_range) if args.snr_range else None
    outdir = str(args.outdir.resolve())
    jobs = [
        Job(
            u,
            str(Path(p).absolute()),
            outdir,
            args.seed,
            args.snr,
            snr_range,
            args.subtype,
            args.rir_prob if rirs else 0.0,
            args.rir_reference,
            args.rir_early_ms,
        )
        for u, p in utts.items()
    ]
    results: Dict[str, Result] = {}
    bar = tqdm(total=len(jobs), desc=args.outdir.name, unit="utt", mininterval=2)
    if args.nj == 1 or len(jobs) == 1:
        for job in jobs:
            res = simulate_utt(job)
            results[res.utt] = res
            bar.update()
    else:
        ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        chunk = max(1, min(16, len(jobs) // (4 * args.nj)))
        with ctx.Pool(
            min(args.nj, len(jobs)), initializer=_init, initargs=(pool, True, rirs)
        ) as workers:
            for res in workers.imap_unordered(simulate_utt, jobs, chunksize=chunk):
                results[res.utt] = res
                bar.update()
    bar.close()

    rs = results.values()
    write_kaldi(args.outdir / "wav.scp", {r.utt: r.noisy_path for r in rs})
    write_kaldi(args.outdir / "spk1.scp", {r.utt: r.clean_path for r in rs})
    write_kaldi(args.outdir / "utt2snr", {r.utt: f"{r.snr:g}" for r in rs})
    write_kaldi(
        args.outdir / "utt2noise", {r.utt: f"{r.noise_id} {r.offset}" for r in rs}
    )
    if rirs:
        write_kaldi(args.outdir / "utt2rir", {r.utt: r.rir_id for r in rs})
    for name in COPIED_FILES:
        if (args.data_dir / name).is_file():
            tmp = args.outdir / f"{name}.tmp"
            shutil.copyfile(args.data_dir / name, tmp)
            os.replace(tmp, args.outdir / name)
    atomic_write_text(done, digest + "\n")

    n_scaled = sum(r.scaled for r in rs)
    n_float = sum(r.float_fallback for r in rs)
    n_redraw = sum(r.redraws > 0 for r in rs)
    n_rir = sum(r.rir_id != DRY for r in rs)
    logger.info(
        f"{args.outdir}: {len(results)} utterances, "
        + (f"SNR {args.snr:g} dB" if args.snr is not None else f"SNR {snr_range} dB")
        + f", {len({r.noise_id for r in rs})} distinct noise files; "
        f"{n_scaled} scaled down to avoid clipping, {n_float} written as FLOAT "
        f"(too quiet for 16 bits), {n_redraw} with a silent first noise draw"
        + (
            f"; {n_rir} reverberant ({len({r.rir_id for r in rs} - {DRY})} distinct "
            f"RIRs, {args.rir_reference} reference)"
            if rirs
            else ""
        )
    )
    return results
