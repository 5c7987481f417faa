"""Recipe stage 3: audio of a data directory as mono wav files at one rate.

    python -m espnet2_merit.bin.merit_format_wav --fs 16000 --nj 4 data/X dump/raw/X

For each sound list present (``wav.scp``, and ``spk1.scp``), every file is read
(any format soundfile reads), averaged to mono and resampled to --fs (torchaudio),
then written to ``<out>/data/<list>/<utt>.wav``: 32-bit float if the input held
floats, else 16-bit PCM (a file whose resampled peak would clip in 16 bits is kept
as float instead). A file that already is a mono wav at --fs is not copied: the new
list points to it. Writes the new lists with absolute paths, ``utt2num_samples``
(of wav.scp), and copies the per-utterance text files (emotion, emotion_attr,
utt2spk, utt2gender, utt2snr, utt2noise) and emotion_list.

Both lists must hold the same utterances, and an utterance's noisy and clean audio
the same number of samples after formatting.
"""

import logging
import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import numpy as np
import soundfile
from tqdm import tqdm

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.datadir import (
    KEYED_TEXT_FILES,
    PCM16_MAX,
    SOUND_SCPS,
    read_audio,
    read_sound_scp,
    write_audio,
    write_kaldi,
)

PROG = "merit_format_wav"
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
logger = logging.getLogger(PROG)
_WORKER = [False]  # whether this process is one of --nj workers


class Job(NamedTuple):
    index: int  # in the job list: the result names its job, not its strings
    utt: str
    scp: str  # the list's file name, for messages
    path: str
    out_dir: str  # a formatted copy is <out_dir>/<utt>.wav
    fs: int


class Result(NamedTuple):
    """What a worker sends back: only what the job does not hold already, so the
    parent keeps one copy of each utterance's strings (100k utterances)."""

    index: int
    num_samples: int
    out_path: Optional[str]  # the formatted copy; None: the input is kept
    float_for_range: bool  # PCM input kept as float: 16 bits would clip


def format_one(job: Job) -> Result:
    """Format one file (or keep it, when it already is a mono wav at fs)."""
    what = f"{job.scp}: utterance '{job.utt}'"
    try:
        info = soundfile.info(job.path)
    except Exception as e:
        raise MeritInputError(f"{what}: cannot read audio '{job.path}': {e}") from None
    if info.format == "WAV" and info.channels == 1 and info.samplerate == job.fs:
        return Result(job.index, info.frames, None, False)

    wav, rate = read_audio(job.path, what)
    wav = wav.mean(axis=1) if wav.shape[1] > 1 else wav[:, 0]
    if rate != job.fs:
        import torch
        import torchaudio

        if _WORKER[0]:  # one thread per process: --nj processes fill the cores
            torch.set_num_threads(1)
        wav = torchaudio.functional.resample(
            torch.from_numpy(wav), orig_freq=rate, new_freq=job.fs
        ).numpy()
    subtype = "FLOAT" if info.subtype in FLOAT_SUBTYPES else "PCM_16"
    float_for_range = False
    if subtype == "PCM_16" and wav.size and np.abs(wav).max() > PCM16_MAX:
        # Resampling can overshoot a full-scale input; clipping would distort it.
        subtype, float_for_range = "FLOAT", True
    out_path = os.path.join(job.out_dir, f"{job.utt}.wav")
    write_audio(out_path, wav, job.fs, subtype)
    return Result(job.index, wav.shape[0], out_path, float_for_range)


def _worker_init():
    # torch is imported only when a file must be resampled: a set of files that
    # are already mono wavs at --fs costs each worker no torch import (seconds
    # and hundreds of MB per worker and set).
    _WORKER[0] = True


def format_dir(in_dir: Path, out_dir: Path, fs: int, nj: int = 1) -> Dict[str, int]:
    """Format ``in_dir`` into ``out_dir``; returns utt -> number of samples."""
    if fs < 1 or nj < 1:
        raise MeritInputError(f"--fs and --nj must be positive, got {fs} and {nj}")
    if out_dir.resolve() == in_dir.resolve():
        raise MeritInputError("the output dir must differ from the input dir")
    if not (in_dir / "wav.scp").is_file():
        raise MeritInputError(f"{in_dir / 'wav.scp'}: no such file")
    scps = {
        name: read_sound_scp(in_dir / name)
        for name in SOUND_SCPS
        if (in_dir / name).is_file()
    }
    keys = scps["wav.scp"]
    if not keys:
        raise MeritInputError(f"{in_dir / 'wav.scp'}: no utterances")
    for name, table in scps.items():
        missing = [k for k in keys if k not in table]
        extra = [k for k in table if k not in keys]
        if missing or extra:
            key = (missing or extra)[0]
            raise MeritInputError(
                f"{in_dir / name}: utterance '{key}' is "
                + ("missing (it is in wav.scp)" if missing else "not in wav.scp")
                + f"; {len(missing)} missing, {len(extra)} extra"
            )

    jobs: List[Job] = []
    for name, table in scps.items():
        sub = (out_dir / "data" / name.replace(".scp", "")).absolute()
        sub.mkdir(parents=True, exist_ok=True)
        for utt, path in table.items():
            absolute = str(Path(path).absolute())
            path = path if absolute == path else absolute  # one copy of each string
            jobs.append(Job(len(jobs), utt, name, path, str(sub), fs))
    results: List[Optional[Result]] = [None] * len(jobs)
    bar = tqdm(
        total=len(jobs), desc=f"format {in_dir.name}", unit="file", mininterval=2
    )
    if nj == 1 or len(jobs) == 1:
        for job in jobs:
            results[job.index] = format_one(job)
            bar.update()
    else:
        ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        chunk = max(1, min(16, len(jobs) // (4 * nj)))
        with ctx.Pool(min(nj, len(jobs)), initializer=_worker_init) as pool:
            for res in pool.imap_unordered(format_one, jobs, chunksize=chunk):
                results[res.index] = res
                bar.update()
    bar.close()

    lengths = {
        job.utt: res.num_samples
        for job, res in zip(jobs, results)
        if job.scp == "wav.scp"
    }
    for name in scps:
        table = {}
        for job, res in zip(jobs, results):
            if job.scp != name:
                continue
            path = res.out_path or job.path  # the file the new list points to
            if res.num_samples != lengths[job.utt]:
                raise MeritInputError(
                    f"utterance '{job.utt}': {name} has {res.num_samples} samples "
                    f"at {fs} Hz ({path}) but wav.scp has {lengths[job.utt]}: the "
                    "noisy and clean audio must be aligned"
                )
            table[job.utt] = path
        write_kaldi(out_dir / name, table)
    write_kaldi(out_dir / "utt2num_samples", {u: str(n) for u, n in lengths.items()})
    copied = []
    for name in (*KEYED_TEXT_FILES, "emotion_list"):
        if (in_dir / name).is_file():
            tmp = out_dir / f"{name}.tmp"
            shutil.copyfile(in_dir / name, tmp)
            os.replace(tmp, out_dir / name)
            copied.append(name)
    for name in scps:
        mine = [r for j, r in zip(jobs, results) if j.scp == name]
        n_copy = sum(r.out_path is not None for r in mine)
        n_float = sum(r.float_for_range for r in mine)
        logger.info(
            f"{in_dir / name}: {len(mine)} files, {n_copy} formatted, "
            f"{len(mine) - n_copy} already mono wav at {fs} Hz (kept in place)"
            + (f", {n_float} kept as float (16 bits would clip)" if n_float else "")
        )
    known = {*SOUND_SCPS, *KEYED_TEXT_FILES, "emotion_list"}
    skipped = sorted(
        p.name
        for p in in_dir.iterdir()
        if p.is_file() and p.name not in known and not p.name.startswith(".")
    )
    logger.info(
        f"wrote {out_dir} (copied: {' '.join(copied) or 'nothing'}"
        + (f"; not used: {' '.join(skipped)}" if skipped else "")
        + ")"
    )
    return lengths
