#!/usr/bin/env python3
"""Generate a miniature of the ICBHI 2017 Respiratory Sound Database in the
release's layout, in seconds (numpy only).

    python local/make_mini_icbhi.py --outdir downloads/mini_icbhi [--patients 10] \
        [--seed 0]

Writes, like the release (layout and formats as local/icbhi_data.py documents
them),

  <outdir>/ICBHI_final_database/<patient>_<rec>_<location>_<mode>_<device>.wav
      16-bit mono at the device's rate: 44100 Hz (AKGC417L, LittC2SE), 4000 Hz
      (Litt3200, Meditron) or 10000 Hz (Meditron)
  <outdir>/ICBHI_final_database/<same stem>.txt
      one line ``start<TAB>end<TAB>crackles<TAB>wheezes`` per cycle (3 decimals)
  <outdir>/ICBHI_challenge_train_test.txt   ``<stem><TAB>train|test``
  <outdir>/ICBHI_Challenge_demographic_information.txt
      ``patient<TAB>age<TAB>sex<TAB>adult BMI<TAB>child weight<TAB>child height``
      (NA where not applicable: BMI for adults, weight and height for children)
  <outdir>/ICBHI_Challenge_diagnosis.txt   ``patient<TAB>diagnosis``

for ``--patients`` patients drawn from 101-226, round(0.4 N) of them (at least 1)
in the test set and the rest in train (the official split is 60/40 by patient).
Every patient has ``RECORDINGS_PER_PATIENT`` recordings (indices 1b1, 2b1, ...,
location drawn), whose device and rate go through ``COMBOS`` in turn, so every
rate appears from 3 recordings on; every recording has ``CYCLES_PER_RECORDING``
cycles, one of each class (N C W B) in a drawn order, so a set of P patients has
P * RECORDINGS_PER_PATIENT cycles of each class.

Audio: a low hiss, then the cycles back to back (gaps of 0-0.2 s, 0.3-0.6 s
before the first and after the last), each 1.0-2.5 s long: band-limited noise
(80-1200 Hz) under an inhale hump (the first ~40%, louder) and an exhale hump;
a crackle cycle adds 6-12 short clicks (damped 250-800 Hz sinusoids, a few ms,
mostly in the inhale), a wheeze cycle a sustained tone of 100-1000 Hz (with a
slight vibrato, 0.25 s to 60% of the cycle, in the exhale), a "both" cycle both.
Annotated times are rounded to milliseconds and the audio is built on them. Every
draw comes from --seed: a seed gives the same files. ``<outdir>/.done`` records
the options; a re-run with the same ones skips, other ones regenerate
(ICBHI_final_database/ is emptied first).
"""

import argparse
import io
import json
import logging
import shutil
from pathlib import Path
from typing import List, NamedTuple, Tuple

import numpy as np
import soundfile

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.cli import entry_point
from espnet2_merit.utils.datadir import atomic_write_text, quantize_pcm16

PROG = "make_mini_icbhi.py"
AUDIO_DIR = "ICBHI_final_database"
SPLIT_FILE = "ICBHI_challenge_train_test.txt"
DEMOGRAPHICS_FILE = "ICBHI_Challenge_demographic_information.txt"
DIAGNOSIS_FILE = "ICBHI_Challenge_diagnosis.txt"
PATIENT_IDS = range(101, 227)
LOCATIONS = ("Tc", "Al", "Ar", "Pl", "Pr", "Ll", "Lr")
# (device, acquisition mode, rate) of the recordings, in turn.
COMBOS = (
    ("AKGC417L", "mc", 44100),
    ("Litt3200", "sc", 4000),
    ("Meditron", "sc", 10000),
    ("LittC2SE", "sc", 44100),
    ("Meditron", "sc", 4000),
)
RECORDINGS_PER_PATIENT = 2
# (crackles, wheezes) of the cycles of a recording: one of each class.
FLAGS = ((0, 0), (1, 0), (0, 1), (1, 1))
CYCLES_PER_RECORDING = len(FLAGS)
CYCLE_SEC = (1.0, 2.5)
TEST_SHARE = 0.4
DIAGNOSES = ("COPD", "Healthy", "URTI", "Bronchiectasis", "Pneumonia")
PEAK = 0.8
VERSION = 1
logger = logging.getLogger(PROG)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Generate a miniature ICBHI 2017 database (official layout)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--outdir", type=Path, required=True)
    parser.add_argument(
        "--patients", type=int, default=10, help="Number of patients (2-126)"
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser


class Cycle(NamedTuple):
    start: float  # s, rounded to ms as annotated
    end: float
    crackles: int
    wheezes: int


def band_noise(n: int, fs: int, lo: float, hi: float, rng) -> np.ndarray:
    """Unit-RMS white noise limited to [lo, hi] Hz (FFT mask)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    spec[(freqs < lo) | (freqs > min(hi, 0.45 * fs))] = 0
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def hump(n: int) -> np.ndarray:
    """A smooth rise and fall over n samples."""
    return np.sin(np.pi * (np.arange(n) + 0.5) / max(n, 1)) ** 2


def breath(n: int, fs: int, rng) -> Tuple[np.ndarray, int]:
    """One cycle of breath noise under an inhale/exhale envelope, and the sample
    where the exhale starts."""
    n_in = int(n * rng.uniform(0.35, 0.45))
    n_gap = int(n * 0.05)
    env = np.zeros(n)
    env[:n_in] = hump(n_in)
    env[n_in + n_gap :] = 0.6 * hump(n - n_in - n_gap)
    return 0.1 * env * band_noise(n, fs, 80.0, 1200.0, rng), n_in + n_gap


def add_crackles(x: np.ndarray, fs: int, exhale: int, rng) -> None:
    """6-12 clicks (damped sinusoids), three in four in the inhale."""
    for _ in range(int(rng.integers(6, 13))):
        length = max(4, int(fs * rng.uniform(0.003, 0.008)))
        in_inhale = rng.uniform() < 0.75 or exhale >= len(x) - length
        lo, hi = (
            (0, max(1, exhale - length)) if in_inhale else (exhale, len(x) - length)
        )
        at = int(rng.integers(lo, max(lo + 1, hi)))
        t = np.arange(length) / fs
        f = rng.uniform(250.0, 800.0)
        click = np.sin(2 * np.pi * f * t) * np.exp(-t / (length / fs / 4))
        x[at : at + length] += rng.uniform(0.3, 0.5) * click


def add_wheeze(x: np.ndarray, fs: int, exhale: int, rng) -> None:
    """A tone of 100-1000 Hz with a slight vibrato, in the exhale."""
    room = len(x) - exhale
    length = int(min(room, max(0.25 * fs, rng.uniform(0.3, 0.6) * len(x))))
    at = exhale + int(rng.integers(0, max(1, room - length + 1)))
    length = min(length, len(x) - at)
    t = np.arange(length) / fs
    f0 = rng.uniform(100.0, min(1000.0, 0.4 * fs))
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))) / fs
    ramp = min(length // 2, int(0.02 * fs))
    env = np.ones(length)
    env[:ramp] = np.linspace(0, 1, ramp)
    env[length - ramp :] = np.linspace(1, 0, ramp)
    x[at : at + length] += rng.uniform(0.08, 0.15) * env * np.sin(phase)


def recording(fs: int, rng) -> Tuple[np.ndarray, List[Cycle]]:
    """The audio and cycles of one recording (``CYCLES_PER_RECORDING`` cycles, one
    per class, in a drawn order)."""
    t = round(rng.uniform(0.3, 0.6), 3)
    cycles = []
    for i in rng.permutation(CYCLES_PER_RECORDING):
        end = round(t + rng.uniform(*CYCLE_SEC), 3)
        cycles.append(Cycle(t, end, *FLAGS[i]))
        t = round(end + rng.uniform(0.0, 0.2), 3)
    n = int(round((cycles[-1].end + rng.uniform(0.3, 0.6)) * fs))
    wav = 0.003 * rng.standard_normal(n)  # the device's hiss
    for c in cycles:
        a, b = round(c.start * fs), round(c.end * fs)
        x, exhale = breath(b - a, fs, rng)
        if c.crackles:
            add_crackles(x, fs, exhale, rng)
        if c.wheezes:
            add_wheeze(x, fs, exhale, rng)
        wav[a:b] += x
    return wav * (PEAK / np.abs(wav).max()), cycles


def write_wav(path: Path, wav: np.ndarray, fs: int) -> None:
    """16-bit PCM wav, encoded in memory (``.done`` marks a complete corpus)."""
    buf = io.BytesIO()
    soundfile.write(buf, quantize_pcm16(wav), fs, subtype="PCM_16", format="WAV")
    path.write_bytes(buf.getvalue())


def demographic_row(patient: int, sex: str, rng) -> str:
    if rng.uniform() < 0.3:  # a child: weight and height instead of BMI
        age = int(rng.integers(1, 19))
        weight, height = 3 * age + 8, 6 * age + 75
        cells = [patient, age, sex, "NA", f"{weight:.1f}", f"{height:.1f}"]
    else:
        age = int(rng.integers(19, 91))
        cells = [patient, age, sex, f"{rng.uniform(18, 35):.2f}", "NA", "NA"]
    return "\t".join(str(c) for c in cells)


def generate(outdir: Path, patients: int = 10, seed: int = 0) -> Path:
    """Write the miniature; returns its ICBHI_final_database directory. Skips when
    ``<outdir>/.done`` records the same options."""
    if not 2 <= patients <= len(PATIENT_IDS):
        raise MeritInputError(f"--patients {patients}: expected 2-{len(PATIENT_IDS)}")
    audio_dir = outdir / AUDIO_DIR
    stamp = json.dumps({"patients": patients, "seed": seed, "version": VERSION})
    done = outdir / ".done"
    if audio_dir.is_dir() and done.is_file() and done.read_text() == stamp:
        logger.info(f"{outdir}: already generated with these options, skipping")
        return audio_dir
    done.unlink(missing_ok=True)
    if audio_dir.exists():
        shutil.rmtree(audio_dir)
    audio_dir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    ids = sorted(int(p) for p in rng.choice(PATIENT_IDS, patients, replace=False))
    n_test = max(1, round(patients * TEST_SHARE))
    test = {ids[i] for i in rng.permutation(patients)[:n_test]}
    sexes = ["M", "F"] * (patients // 2) + ["M"] * (patients % 2)
    sexes = [sexes[i] for i in rng.permutation(patients)]
    split, demographics, diagnoses = [], [], []
    k, seconds = 0, 0.0
    for patient, sex in zip(ids, sexes):
        demographics.append(demographic_row(patient, sex, rng))
        diagnoses.append(f"{patient}\t{DIAGNOSES[int(rng.integers(len(DIAGNOSES)))]}")
        for j in range(RECORDINGS_PER_PATIENT):
            device, mode, fs = COMBOS[k % len(COMBOS)]
            k += 1
            location = LOCATIONS[int(rng.integers(len(LOCATIONS)))]
            stem = f"{patient}_{j + 1}b1_{location}_{mode}_{device}"
            wav, cycles = recording(fs, rng)
            write_wav(audio_dir / f"{stem}.wav", wav, fs)
            (audio_dir / f"{stem}.txt").write_text(
                "".join(
                    f"{c.start:.3f}\t{c.end:.3f}\t{c.crackles}\t{c.wheezes}\n"
                    for c in cycles
                )
            )
            split.append(f"{stem}\t{'test' if patient in test else 'train'}")
            seconds += len(wav) / fs
    atomic_write_text(outdir / SPLIT_FILE, "\n".join(sorted(split)) + "\n")
    atomic_write_text(outdir / DEMOGRAPHICS_FILE, "\n".join(demographics) + "\n")
    atomic_write_text(outdir / DIAGNOSIS_FILE, "\n".join(diagnoses) + "\n")
    atomic_write_text(done, stamp)
    logger.info(
        f"{outdir}: {k} recordings of {patients} patients ({n_test} test), "
        f"{seconds / 60:.1f} min"
    )
    return audio_dir


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point(PROG):
        generate(args.outdir, args.patients, args.seed)


if __name__ == "__main__":
    main()
