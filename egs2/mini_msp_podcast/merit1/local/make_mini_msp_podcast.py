#!/usr/bin/env python3
"""Generate a small corpus in MSP-Podcast's layout from espeak-ng speech.

    python local/make_mini_msp_podcast.py --outdir downloads/mini_msp_podcast \
        --num_train 160 --num_dev 40 --num_test 60 [--num_unlabelled 40] --seed 0 \
        --nj 2

Writes ``<outdir>/Audios/MSP-PODCAST_<spk>_<utt>.wav`` (16 kHz mono 16-bit),
``<outdir>/Labels/labels_consensus.csv`` with MSP-Podcast's header and
``<outdir>/Labels/labels_detailed.csv``, the individual annotations in the layout of
release 1.11 and later (``FileName,EmoDetail``), and
``<outdir>/Transcripts/MSP-PODCAST_<spk>_<utt>.txt`` (the sentence each utterance
speaks, one file per utterance as MSP-Podcast ships them), so the mini recipe runs
the same data preparation (``local/msp_podcast_data.py``) as the real one.

Speech is synthesised offline by ``espeak-ng`` (``apt-get install -y espeak-ng``)
from short neutral sentences, in several voices (accent x voice variant, one per
speaker; speakers are disjoint across Train, Development and Test1). The four
classes differ only in prosody: pitch level (``-p``), pitch range (SSML
``<prosody range>``), speaking rate (``-s``), loudness (a gain after synthesis) and
how often the sentence is exclaimed. Each is drawn per utterance from a class
distribution that overlaps the others', plus a per-speaker offset, so the task is
learnable but not trivial. EmoAct/EmoVal/EmoDom (1-7) are the class's typical
values (``espnet2_merit.utils.synthetic.ATTRIBUTES``), moved by the utterance's
drawn arousal cues and noise.

``--num_*`` count the utterances of the classes A S H N; each split also gets about
5% extra rows labelled O or X (which data preparation must exclude), and about 5%
of the rows have SpkrID ``Unknown``. The class shares are N 35%, H 25%, A 20%,
S 20% (MSP-Podcast is dominated by neutral speech, less so here).

``--num_unlabelled N`` (default 0) adds an unlabelled pool like MSP-Podcast's Test3:
N utterances of ``Split_Set`` ``Test3`` from speakers of their own (3, disjoint from
the other splits' in id and voice; ``UNLABELLED_SPLIT``), synthesised like the others
(their emotion style drawn with the class shares above, so the audio carries
emotional prosody; about 5% SpkrID ``Unknown``) but with EmoClass, EmoAct, EmoVal and
EmoDom empty (the labels withheld) and no rows in ``labels_detailed.csv``. Their
speakers and utterances come from a random stream of their own, drawn after the
others, so every other file, and the ``.done`` stamp of N = 0, is as without the
option.

Each labelled utterance has ``VOTERS`` annotator rows (``WORKER<5 digits>``, drawn
from a pool) whose primary emotions give its consensus class the plurality: all,
all but one or all but two vote for it (an O utterance: ``Other`` or
``Other-<word>``), the rest for another of the corpus's eight emotions or an
``Other-<word>``; an X utterance's votes tie. The secondary emotions are some words,
empty, or absent altogether, and a few rows (at least one) have no primary (a
missing vote, which never decides the plurality). The rows' A/V/D are the consensus
attributes moved by a point or so.

Every random draw comes from --seed, so a seed gives byte-identical files whatever
--nj, on every run and on any machine with the same espeak-ng (data) and soxr builds
(``espeak()`` says what it takes for espeak-ng's own randomness). The annotations
come from a random stream of their own, so they leave the consensus file and the
audio as they were before the file existed. ``<outdir>/.done`` records the options;
a re-run with the same options skips (writing only ``labels_detailed.csv`` or the
transcripts if a corpus made before they existed lacks them; the transcripts then
come from espeak-ng run again without writing audio, since which sentence an
utterance speaks depends on the synthesised durations).
"""

import argparse
import io
import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import soundfile
import soxr
from tqdm import tqdm

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.cli import entry_point
from espnet2_merit.utils.datadir import atomic_write_text, write_audio
from espnet2_merit.utils.synthetic import ATTRIBUTES

PROG = "make_mini_msp_podcast.py"
FS = 16000
DETAILED_FILE = Path("Labels") / "labels_detailed.csv"
TRANSCRIPTS_DIR = Path("Transcripts")  # <FileName stem>.txt per utterance
HEADER = "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"
DETAILED_HEADER = "FileName,EmoDetail"  # MSP-Podcast 1.11 and later
CLASSES = ("A", "S", "H", "N")
CLASS_SHARE = (0.20, 0.20, 0.25, 0.35)
EXTRA_CODES = ("O", "X")  # codes data preparation must exclude
EXTRA_SHARE = 0.05  # O/X rows per labelled row
UNKNOWN_SHARE = 0.05  # rows with SpkrID "Unknown"
# Annotations (labels_detailed.csv): primary emotion words of the corpus's codes.
PRIMARY_WORDS = {
    "A": "Angry",
    "S": "Sad",
    "H": "Happy",
    "U": "Surprise",
    "F": "Fear",
    "D": "Disgust",
    "C": "Contempt",
    "N": "Neutral",
}
OTHER_WORDS = ("Curious", "Confused", "Bored", "Amused", "Tired")
SECONDARY_WORDS = ("Concerned", "Frustrated", "Calm", "Annoyed", "Excited", "Amused")
VOTERS = 5  # annotators per utterance
WORKERS = 40  # size of the annotator pool
AGREE_SHARE = ((5, 0.3), (4, 0.45), (3, 0.25))  # votes for the consensus class
SECONDARY_SHARE = (0.25, 0.1)  # rows with an empty secondary field, without one
MISSING_SHARE = 0.03  # utterances with one row without a primary (at least one)
VOTES_STREAM = 1  # the annotations' random stream: (seed, VOTES_STREAM)
UNLABELLED_STREAM = 2  # the unlabelled pool's: (seed, UNLABELLED_STREAM)
# Speakers per split: Train, Development, Test1.
SPLITS = (("Train", 10), ("Development", 3), ("Test1", 5))
UNLABELLED_SPLIT = ("Test3", 3)  # the unlabelled pool (--num_unlabelled) and speakers
ACCENTS = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-029",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
VARIANTS = {"Female": ("f1", "f2", "f3", "f4", "f5"), "Male": ("m1", "m2", "m3", "m7")}
# Per class, (mean, sd) of: espeak pitch (0-99), pitch range (% of the voice's),
# rate (words/min), gain (dB); then the probability of an exclamation mark.
PROSODY = {
    "A": ((55, 10), (120, 30), (205, 18), (6.0, 2.5), 0.5),
    "S": ((30, 10), (50, 20), (140, 18), (-6.0, 2.5), 0.05),
    "H": ((72, 10), (180, 30), (180, 18), (1.5, 2.5), 0.5),
    "N": ((45, 10), (90, 25), (165, 18), (-1.5, 2.5), 0.1),
}
SPEAKER_SD = (6, 15, 10, 2.0)  # per-speaker offsets of pitch, range, rate, gain
AMPLITUDE = 40  # espeak -a; low enough that the largest gain does not clip
PEAK = 0.9  # an utterance louder than this is scaled down to it
NOISE_FLOOR = 1e-4  # std of the added floor: real recordings are never digital zero
DURATION = (1.5, 3.5)  # seconds, silences included
SILENCE = (0.1, 0.4)  # leading and trailing silence, seconds
FADE = 160  # samples of fade-out where too long speech is cut
SENTENCES = (
    "The meeting starts at nine tomorrow morning",
    "I left my keys on the kitchen table",
    "The train to the city leaves every hour",
    "She bought two loaves of bread today",
    "We walked along the river after lunch",
    "The library closes early on Sundays",
    "He painted the fence a light shade of green",
    "My brother moved to a new apartment",
    "The package arrived late in the afternoon",
    "They planted tomatoes in the back garden",
    "The report is due at the end of the week",
    "Our neighbours have a small brown dog",
    "The bus was full this morning",
    "I need to call the dentist again",
    "The store sells fresh fruit and vegetables",
    "She reads the newspaper every evening",
    "The weather will change later this week",
    "He forgot to charge his phone last night",
    "We ordered soup and a salad for dinner",
    "The children are playing in the park",
    "The office is on the third floor",
    "I watched a documentary about the ocean",
    "The coffee machine is broken again",
    "They are driving to the coast on Friday",
    "The teacher handed out the new books",
    "My sister works at the local hospital",
    "The road was closed because of repairs",
    "He always takes the stairs at work",
    "We need more paper for the printer",
    "The concert was moved to next month",
    "I will call you later",
    "The door is open",
    "Lunch is served at noon",
)
logger = logging.getLogger(PROG)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Generate a small MSP-Podcast-format corpus from espeak-ng speech",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--outdir", type=Path, required=True)
    parser.add_argument(
        "--num_train", type=int, default=160, help="A/S/H/N utterances in Train"
    )
    parser.add_argument(
        "--num_dev", type=int, default=40, help="A/S/H/N utterances in Development"
    )
    parser.add_argument(
        "--num_test", type=int, default=60, help="A/S/H/N utterances in Test1"
    )
    parser.add_argument(
        "--num_unlabelled",
        type=int,
        default=0,
        help="Utterances of an unlabelled Test3 pool (labels withheld); 0: none",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nj", type=int, default=1, help="Parallel synthesis jobs")
    return parser


class Speaker(NamedTuple):
    spk_id: str  # 4 digits
    voice: str  # espeak voice, accent+variant
    gender: str
    offsets: Tuple[float, float, float, float]  # pitch, range, rate, gain


class Job(NamedTuple):
    """Everything one utterance needs; drawn up front, so workers draw nothing."""

    path: str
    voice: str
    pitch: int
    pitch_range: int
    rate: int
    gain_db: float
    exclaim: bool
    sentences: Tuple[int, ...]  # indices to try, in order, until one fits DURATION
    silences: Tuple[float, float]
    floor_seed: int


def espeak_env() -> Dict[str, str]:
    """The environment espeak-ng runs in: ours, with PULSE_RUNTIME_PATH set.

    espeak-ng draws the breath noise of voices with ``breath`` (the variants f2, f3,
    f5) from the C library's rand(), never seeded, so its audio is reproducible only
    while nothing else in the process draws from rand() first. Even with --stdout,
    espeak-ng 1.51 opens (and closes) an audio device at start-up through libpcaudio
    and libpulse, and libpulse, when the runtime directory it links from
    ``~/.config/pulse/<machine-id>-runtime`` is missing or stale (a fresh machine or
    HOME, a cleaned /tmp), makes a new ``$TMPDIR/pulse-<12 letters>`` with 12 rand()
    calls per name it tries (more when names from the same unseeded sequence exist
    already). The first espeak-ng run then, and the first run of each job racing it,
    gets other breath noise. Given PULSE_RUNTIME_PATH, libpulse uses (and creates)
    that directory and draws nothing, whatever the state of HOME and /tmp.
    """
    runtime = Path(tempfile.gettempdir()) / f"merit-espeak-ng-pulse-{os.getuid()}"
    return {**os.environ, "PULSE_RUNTIME_PATH": str(runtime)}


def espeak(voice: str, text: str, pitch: int, pitch_range: int, rate: int):
    """Synthesise ``text``: (T,) float64 at 16 kHz."""
    ssml = f'<speak><prosody range="{pitch_range}%">{text}</prosody></speak>'
    cmd = ["espeak-ng", "-m", "-z", "-v", voice, "-p", str(pitch), "-s", str(rate)]
    cmd += ["-a", str(AMPLITUDE), "--stdout", ssml]
    try:
        proc = subprocess.run(cmd, capture_output=True, check=True, env=espeak_env())
        wav, fs = soundfile.read(io.BytesIO(proc.stdout), dtype="float64")
    except FileNotFoundError:
        raise MeritInputError(
            "espeak-ng is not installed (apt-get install -y espeak-ng)"
        ) from None
    except (subprocess.CalledProcessError, soundfile.LibsndfileError) as e:
        stderr = getattr(e, "stderr", b"") or b""
        raise MeritInputError(
            f"espeak-ng failed for voice {voice!r}: {e} {stderr.decode().strip()}"
        ) from None
    if wav.size == 0:
        raise MeritInputError(f"espeak-ng produced no audio for voice {voice!r}")
    return soxr.resample(wav, fs, FS, quality="HQ")


def spoken(job: Job) -> Tuple[str, np.ndarray]:
    """The sentence ``job`` speaks and its (T,) speech: the first of its
    sentences that fits ``DURATION``, else the one nearest the range."""
    lead, trail = (int(s * FS) for s in job.silences)
    best = None
    for index in job.sentences:
        text = SENTENCES[index] + ("!" if job.exclaim else ".")
        speech = espeak(job.voice, text, job.pitch, job.pitch_range, job.rate)
        seconds = (len(speech) + lead + trail) / FS
        miss = max(DURATION[0] - seconds, seconds - DURATION[1], 0.0)
        if best is None or miss < best[0]:
            best = (miss, text, speech)
        if miss == 0.0:
            break
    return best[1], best[2]


def transcript(job: Job) -> str:
    """The sentence ``job`` speaks (synthesised again, no audio written)."""
    return spoken(job)[0]


def synthesise(job: Job) -> Tuple[str, float, bool, str]:
    """Write one utterance; returns (path, seconds, whether its peak was limited,
    the sentence spoken)."""
    lead, trail = (int(s * FS) for s in job.silences)
    text, speech = spoken(job)
    room = int(DURATION[1] * FS) - lead - trail
    if len(speech) > room:  # very slow speech: cut, fading out to avoid a click
        speech = speech[:room] * np.minimum(1.0, np.arange(room, 0, -1) / FADE)
    wav = np.concatenate([np.zeros(lead), speech, np.zeros(trail)])
    wav = np.pad(wav, (0, max(0, int(DURATION[0] * FS) - len(wav))))
    wav *= 10 ** (job.gain_db / 20)
    limited = np.abs(wav).max() > PEAK
    if limited:
        wav *= PEAK / np.abs(wav).max()
    wav += NOISE_FLOOR * np.random.default_rng(job.floor_seed).standard_normal(len(wav))
    write_audio(job.path, wav, FS, "PCM_16")
    return job.path, len(wav) / FS, bool(limited), text


def _allocate(n: int, shares: Sequence[float]) -> List[int]:
    """``n`` split by ``shares`` (largest remainder), each at least 1 when n allows."""
    raw = np.asarray(shares) * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(counts - raw, kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    for i in range(len(counts)):  # every class present, taken from the largest
        if counts[i] == 0 and counts.max() > 1:
            counts[i], counts[counts.argmax()] = 1, counts[counts.argmax()] - 1
    return counts.tolist()


def _speakers(
    rng: np.random.Generator,
    total: int = sum(n for _, n in SPLITS),
    taken: Sequence[Speaker] = (),
) -> List[Speaker]:
    """``total`` distinct (accent, variant) voices with ids and prosody offsets,
    genders alternating (the first female); ids and voices of ``taken`` are not
    used."""
    taken_voices = {s.voice for s in taken}
    voices = {
        g: [f"{a}+{v}" for a in ACCENTS for v in variants]
        for g, variants in VARIANTS.items()
    }
    voices = {g: [v for v in vs if v not in taken_voices] for g, vs in voices.items()}
    taken_ids = {int(s.spk_id) for s in taken}
    free = np.array([i for i in range(1, 10000) if i not in taken_ids])
    ids = rng.choice(free, size=total, replace=False)
    speakers = []
    for i in range(total):
        gender = ("Female", "Male")[i % 2]
        voice = voices[gender].pop(rng.integers(len(voices[gender])))
        offsets = tuple(float(rng.normal(0, sd)) for sd in SPEAKER_SD)
        speakers.append(Speaker(f"{ids[i]:04d}", voice, gender, offsets))
    return speakers


def _attributes(label: str, arousal_cue: float, rng: np.random.Generator):
    """EmoAct, EmoVal, EmoDom: the class's typical values moved by the drawn
    arousal cue (z-score-like) and noise, clipped to 1-7."""
    if label in CLASSES:
        aro, val, dom = ATTRIBUTES[label]
    else:  # other / no agreement: anywhere near the middle
        aro, val, dom = rng.uniform(3.0, 5.0, 3)
    aro += 0.5 * arousal_cue + rng.normal(0, 0.4)
    val += rng.normal(0, 0.5)
    dom += 0.3 * arousal_cue + rng.normal(0, 0.4)
    return [float(np.clip(x, 1.0, 7.0)) for x in (aro, val, dom)]


def _job(
    path: Path, spk: Speaker, style: str, rng: np.random.Generator
) -> Tuple[Job, float]:
    """One utterance of ``spk`` in the prosody of class ``style``, and its arousal
    cue (for :func:`_attributes`)."""
    pitch_, range_, rate_, gain_, p_excl = PROSODY[style]
    z = rng.standard_normal(4)
    draw = [  # class mean + class sd * z + speaker offset
        mu + sd * zi + off
        for (mu, sd), zi, off in zip((pitch_, range_, rate_, gain_), z, spk.offsets)
    ]
    pitch = int(np.clip(round(draw[0]), 0, 99))
    prange = int(np.clip(round(draw[1]), 10, 300))
    rate = int(np.clip(round(draw[2]), 100, 280))
    gain = float(draw[3])
    order = tuple(int(x) for x in rng.permutation(len(SENTENCES)))
    job = Job(
        path=str(path),
        voice=spk.voice,
        pitch=pitch,
        pitch_range=prange,
        rate=rate,
        gain_db=round(gain, 2),
        exclaim=bool(rng.random() < p_excl),
        sentences=order,
        silences=tuple(float(x) for x in rng.uniform(*SILENCE, size=2)),
        floor_seed=int(rng.integers(2**32)),
    )
    # Arousal cues of this draw: louder, faster, wider pitch range.
    return job, float((z[1] + z[2] + z[3]) / np.sqrt(3))


def _unknown(n: int, rng: np.random.Generator) -> set:
    """Indices of the ``n`` rows of a split whose SpkrID is ``Unknown``."""
    n_unknown = max(1, round(UNKNOWN_SHARE * n))
    return set(rng.choice(n, size=n_unknown, replace=False).tolist())


def _utterances(speakers: Sequence[Speaker], n: int):
    """(speaker, file name) of a split's ``n`` utterances, speakers in turn."""
    utt_count: Dict[str, int] = {}
    for i in range(n):
        spk = speakers[i % len(speakers)]
        utt_count[spk.spk_id] = utt_count.get(spk.spk_id, 0) + 1
        yield spk, f"MSP-PODCAST_{spk.spk_id}_{utt_count[spk.spk_id]:04d}.wav"


def plan(
    outdir: Path, nums: Sequence[int], seed: int, num_unlabelled: int = 0
) -> Tuple[List[Job], List[str]]:
    """The utterances to synthesise and the CSV rows (sorted by FileName); with
    ``num_unlabelled`` > 0, also those of the unlabelled Test3 pool (rows with
    EmoClass, EmoAct, EmoVal and EmoDom empty), drawn after the others from
    their own random stream."""
    rng = np.random.default_rng(seed)
    # Genders alternate, so consecutive slices give every split both.
    speakers = _speakers(rng)
    jobs, rows = [], []
    start = 0
    for (split, n_spk), num in zip(SPLITS, nums):
        split_speakers = speakers[start : start + n_spk]
        start += n_spk
        labels = [
            c for c, k in zip(CLASSES, _allocate(num, CLASS_SHARE)) for _ in range(k)
        ]
        n_extra = max(1, round(EXTRA_SHARE * num))
        labels += [EXTRA_CODES[i % len(EXTRA_CODES)] for i in range(n_extra)]
        labels = [labels[i] for i in rng.permutation(len(labels))]
        unknown = _unknown(len(labels), rng)
        utterances = _utterances(split_speakers, len(labels))
        for i, (label, (spk, name)) in enumerate(zip(labels, utterances)):
            # O/X utterances sound like one of the four classes.
            style = label if label in CLASSES else CLASSES[rng.integers(len(CLASSES))]
            job, cue = _job(outdir / "Audios" / name, spk, style, rng)
            jobs.append(job)
            aro, val, dom = _attributes(label, cue, rng)
            spk_id = "Unknown" if i in unknown else str(int(spk.spk_id))
            rows.append(
                f"{name},{label},{aro:.1f},{val:.1f},{dom:.1f},{spk_id},"
                f"{spk.gender},{split}"
            )
    if num_unlabelled > 0:
        pool_jobs, pool_rows = _plan_unlabelled(outdir, num_unlabelled, seed, speakers)
        jobs += pool_jobs
        rows += pool_rows
    return jobs, sorted(rows)


def _plan_unlabelled(
    outdir: Path, num: int, seed: int, taken: Sequence[Speaker]
) -> Tuple[List[Job], List[str]]:
    """The unlabelled Test3 pool of :func:`plan`: ``num`` utterances of speakers
    disjoint from ``taken``, styles in the class shares, labels withheld."""
    rng = np.random.default_rng((seed, UNLABELLED_STREAM))
    split, n_spk = UNLABELLED_SPLIT
    speakers = _speakers(rng, n_spk, taken)
    styles = [c for c, k in zip(CLASSES, _allocate(num, CLASS_SHARE)) for _ in range(k)]
    styles = [styles[i] for i in rng.permutation(len(styles))]
    unknown = _unknown(num, rng)
    jobs, rows = [], []
    utterances = _utterances(speakers, num)
    for i, (style, (spk, name)) in enumerate(zip(styles, utterances)):
        jobs.append(_job(outdir / "Audios" / name, spk, style, rng)[0])
        spk_id = "Unknown" if i in unknown else str(int(spk.spk_id))
        rows.append(f"{name},,,,,{spk_id},{spk.gender},{split}")
    return jobs, rows


def generate(
    outdir: Path,
    num_train: int = 160,
    num_dev: int = 40,
    num_test: int = 60,
    seed: int = 0,
    nj: int = 1,
    num_unlabelled: int = 0,
) -> Path:
    """Write the corpus; returns the label file. Skips when ``<outdir>/.done``
    records the same options."""
    nums = (num_train, num_dev, num_test)
    if min(nums) < 1:
        raise MeritInputError(f"--num_train/--num_dev/--num_test {nums}: need >= 1")
    if num_unlabelled < 0:
        raise MeritInputError(f"--num_unlabelled {num_unlabelled}: need >= 0")
    if nj < 1:
        raise MeritInputError(f"--nj {nj}: need >= 1")
    if shutil.which("espeak-ng") is None:
        raise MeritInputError(
            "espeak-ng is not installed (apt-get install -y espeak-ng)"
        )
    label_file = outdir / "Labels" / "labels_consensus.csv"
    # Version 2: version 1's breath voices could depend on libpulse's state.
    options = {"nums": nums, "seed": seed, "version": 2}
    if num_unlabelled > 0:  # N = 0: the stamp of before the option (no regeneration)
        options["num_unlabelled"] = num_unlabelled
    stamp = json.dumps(options)
    done = outdir / ".done"
    if label_file.is_file() and done.is_file() and done.read_text() == stamp:
        logger.info(f"{outdir}: already generated with these options, skipping")
        if not (outdir / DETAILED_FILE).is_file():  # made before the file existed
            rows = plan(outdir.resolve(), nums, seed, num_unlabelled)[1]
            write_detailed(outdir, rows, seed)
            logger.info(f"wrote the missing {outdir / DETAILED_FILE}")
        if not (outdir / TRANSCRIPTS_DIR).is_dir():  # made before they existed
            jobs = plan(outdir.resolve(), nums, seed, num_unlabelled)[0]
            with multiprocessing.Pool(nj) if nj > 1 else _Serial() as pool:
                texts = list(pool.imap(transcript, jobs, chunksize=4))
            write_transcripts(outdir, [j.path for j in jobs], texts)
            logger.info(f"wrote the missing {outdir / TRANSCRIPTS_DIR}")
        return label_file
    done.unlink(missing_ok=True)
    jobs, rows = plan(outdir.resolve(), nums, seed, num_unlabelled)
    audio_dir = outdir / "Audios"
    audio_dir.mkdir(parents=True, exist_ok=True)
    # Files of an earlier, larger corpus would otherwise sit unlisted beside it.
    wanted = {Path(j.path).name for j in jobs}
    for stale in audio_dir.glob("MSP-PODCAST_*.wav"):
        if stale.name not in wanted:
            stale.unlink()
    with multiprocessing.Pool(nj) if nj > 1 else _Serial() as pool:
        results = list(
            tqdm(
                pool.imap(synthesise, jobs, chunksize=4),
                total=len(jobs),
                desc="synthesis",
                mininterval=1.0,
            )
        )
    seconds = np.array([r[1] for r in results])
    limited = sum(r[2] for r in results)
    logger.info(
        f"{len(jobs)} utterances, {seconds.sum() / 60:.1f} min, "
        f"{seconds.min():.2f}-{seconds.max():.2f} s each; "
        f"{limited} scaled down to peak {PEAK}"
    )
    write_labels(outdir, rows)
    write_detailed(outdir, rows, seed)
    write_transcripts(outdir, [r[0] for r in results], [r[3] for r in results])
    atomic_write_text(done, stamp)
    return label_file


def write_transcripts(outdir: Path, paths: Sequence[str], texts: Sequence[str]):
    """``<outdir>/Transcripts/<stem>.txt``, one per utterance (the audio's
    ``paths``), each the sentence it speaks; files of an earlier, larger corpus
    are removed."""
    folder = outdir / TRANSCRIPTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {f"{Path(p).stem}.txt": text for p, text in zip(paths, texts)}
    for stale in folder.glob("*.txt"):
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        atomic_write_text(folder / name, text + "\n")


def write_labels(outdir: Path, rows: Sequence[str]) -> Path:
    """Write ``<outdir>/Labels/labels_consensus.csv``: MSP-Podcast's header and the
    CSV ``rows`` (of :func:`plan`); returns its path. The audio the rows name is
    the caller's (:func:`synthesise` here; links to a few clips in
    ``bench/data_scale.py``)."""
    label_file = outdir / "Labels" / "labels_consensus.csv"
    atomic_write_text(label_file, HEADER + "\n" + "".join(r + "\n" for r in rows))
    return label_file


def _other(rng: np.random.Generator) -> str:
    """An annotator's "other" primary: plain, or with a free-text word."""
    if rng.random() < 0.3:
        return "Other"
    return f"Other-{OTHER_WORDS[rng.integers(len(OTHER_WORDS))]}"


def _primaries(label: str, rng: np.random.Generator) -> List[str]:
    """``VOTERS`` primary emotions whose plurality is ``label`` (a tie for X),
    dissenting votes last."""
    if label == "X":  # no agreement: two classes tie, and one more vote
        a, b, c = (PRIMARY_WORDS[x] for x in rng.choice(list(PRIMARY_WORDS), 3, False))
        return [a, b, a, b, c]
    agree = int(rng.choice([n for n, _ in AGREE_SHARE], p=[p for _, p in AGREE_SHARE]))
    votes = [
        _other(rng) if label == "O" else PRIMARY_WORDS[label] for _ in range(agree)
    ]
    others = [c for c in PRIMARY_WORDS if c != label]
    for _ in range(VOTERS - agree):
        if label != "O" and rng.random() < 0.25:
            votes.append(_other(rng))
        else:
            votes.append(PRIMARY_WORDS[others[rng.integers(len(others))]])
    return votes


def _secondary(rng: np.random.Generator) -> Optional[str]:
    """Secondary emotions: words, empty (""), or absent (None)."""
    empty, absent = SECONDARY_SHARE
    u = rng.random()
    if u < absent:
        return None
    if u < absent + empty:
        return ""
    k = int(rng.integers(1, 3))
    return ",".join(rng.choice(SECONDARY_WORDS, size=k, replace=False).tolist())


def plan_detailed(rows: Sequence[str], seed: int) -> List[str]:
    """The ``labels_detailed.csv`` rows (1.11 layout) of the consensus ``rows`` of
    :func:`plan`: ``VOTERS`` per labelled row, none for an unlabelled one."""
    rng = np.random.default_rng((seed, VOTES_STREAM))
    workers = [f"WORKER{n:05d}" for n in rng.choice(100000, WORKERS, replace=False)]
    labelled = [r.split(",") for r in rows if r.split(",")[1]]
    n_missing = max(1, round(MISSING_SHARE * len(labelled))) if labelled else 0
    missing = set(rng.choice(len(labelled), n_missing, replace=False).tolist())
    out = []
    for i, (name, label, *attrs) in enumerate(labelled):
        consensus = [float(a) for a in attrs[:3]]
        primaries = _primaries(label, rng)
        if i in missing:  # the last vote dissents (or is one of five agreeing)
            primaries[-1] = ""
        chosen = rng.choice(WORKERS, VOTERS, replace=False)
        for worker, primary in zip(chosen, primaries):
            avd = np.clip(np.round(consensus + rng.normal(0, 0.8, 3)), 1, 7)
            parts = [workers[worker], primary]
            secondary = _secondary(rng)
            if secondary is not None:
                parts.append(secondary)
            parts += [f"{k}:{x:.1f}" for k, x in zip("AVD", avd)]
            detail = "; ".join(parts) + ";"
            out.append(f'{name},"{detail}"')  # quoted, as in the corpus
    return out


def write_detailed(outdir: Path, rows: Sequence[str], seed: int) -> Path:
    """Write ``<outdir>/Labels/labels_detailed.csv`` (see :func:`plan_detailed`)
    for the consensus ``rows``; returns its path."""
    path = outdir / DETAILED_FILE
    lines = plan_detailed(rows, seed)
    atomic_write_text(path, DETAILED_HEADER + "\n" + "".join(r + "\n" for r in lines))
    return path


class _Serial:
    """``multiprocessing.Pool``'s imap in this process (for --nj 1)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def imap(func, items, chunksize=1):
        return map(func, items)


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point(PROG):
        label_file = generate(
            args.outdir,
            args.num_train,
            args.num_dev,
            args.num_test,
            seed=args.seed,
            nj=args.nj,
            num_unlabelled=args.num_unlabelled,
        )
    logger.info(f"wrote {label_file}")


if __name__ == "__main__":
    main()
