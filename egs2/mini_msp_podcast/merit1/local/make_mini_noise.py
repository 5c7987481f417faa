#!/usr/bin/env python3
"""Generate noise recordings for the mini recipe: one directory per noise type.

    python local/make_mini_noise.py --outdir downloads/mini_noise --num_per_type 10 \
        --seed 0 --nj 2

Writes ``<outdir>/<type>/<type>_<i>.wav`` (16 kHz mono 16-bit, 4-8 s, about -26 dBFS
RMS) for the types

  white    flat-spectrum Gaussian noise
  pink     1/f power spectrum
  brown    1/f^2 power spectrum (rumble)
  hum      mains hum: 50 or 60 Hz harmonics, a buzz with flutter, a little hiss
  traffic  low-frequency rumble swelling as vehicles pass, engine tones sweeping
  cafe     murmur (pink noise modulated at syllable rate) with dish clinks
  babble   4-7 espeak-ng talkers (``apt-get install -y espeak-ng``) summed

``babble`` is meant to be held out as the *unseen* noise type (the mini recipe's
``db.sh`` lists ``<outdir>/babble`` in NOISE_UNSEEN_DIRS and the other directories in
NOISE_SEEN_DIRS): it is speech-like, so it is the hardest case for a model that
never heard it. ``--types`` limits the types generated.

Each file is drawn from a generator seeded by (--seed, type, index), so a seed gives
byte-identical files whatever --nj, on every run (babble's espeak-ng runs in
``make_mini_msp_podcast.espeak_env()``, which keeps espeak-ng's breath noise
independent of libpulse's state). ``<outdir>/.done`` records the options; a re-run
with the same options skips.
"""

import argparse
import json
import logging
import multiprocessing
import sys
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
from tqdm import tqdm

# The sibling script's espeak-ng wrapper and voices (local/ is not a package).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_mini_msp_podcast import ACCENTS, VARIANTS, espeak  # noqa: E402 isort:skip

from espnet2_merit.errors import MeritInputError  # noqa: E402
from espnet2_merit.utils.cli import entry_point  # noqa: E402
from espnet2_merit.utils.datadir import atomic_write_text, write_audio  # noqa: E402

PROG = "make_mini_noise.py"
FS = 16000
DURATION = (4.0, 8.0)  # seconds per file
RMS = 0.05  # about -26 dBFS
PEAK = 0.9
UNSEEN_TYPE = "babble"
BABBLE_TEXT = (
    "Could you pass me the sugar please",
    "I think the game starts at eight",
    "We should book a table for four",
    "Did you see the message I sent",
    "The new menu has a lot of pasta",
    "My cousin is visiting next weekend",
    "They finally fixed the elevator",
    "I have been waiting for twenty minutes",
    "Let us meet at the corner later",
    "The cake here is really good",
)
logger = logging.getLogger(PROG)


def _shaped(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1/f^exponent (no energy below 20 Hz)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / FS)
    scale = np.zeros_like(f)
    scale[f >= 20] = f[f >= 20] ** (-exponent / 2)
    return np.fft.irfft(spec * scale, n)


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n)


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    return _shaped(n, rng, 1.0)


def brown(n: int, rng: np.random.Generator) -> np.ndarray:
    return _shaped(n, rng, 2.0)


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / FS
    f0 = rng.choice([50.0, 60.0]) * rng.uniform(0.995, 1.005)
    flutter = 1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.2, 2.0) * t)
    wav = np.zeros(n)
    for h in range(1, 25):
        # Odd harmonics dominate a transformer's buzz.
        amp = rng.uniform(0.3, 1.0) / h ** (0.7 if h % 2 else 1.4)
        wav += amp * np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 2 * np.pi))
    return wav * flutter + 0.03 * rng.standard_normal(n)


def traffic(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / FS
    rumble = _shaped(n, rng, 1.6)
    rumble /= rumble.std()
    swell = np.full(n, 0.3)
    engines = np.zeros(n)
    for _ in range(rng.integers(2, 6)):
        centre, width = rng.uniform(0, n / FS), rng.uniform(0.8, 2.5)
        bump = np.exp(-0.5 * ((t - centre) / width) ** 2)
        swell += rng.uniform(0.5, 1.5) * bump
        # Pitch falls as the vehicle passes (Doppler).
        f = rng.uniform(40, 120) * (1 - 0.1 * np.tanh((t - centre) / width))
        engines += 0.3 * bump * np.sin(2 * np.pi * np.cumsum(f) / FS)
    return rumble * swell + engines


def cafe(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / FS
    murmur = _shaped(n, rng, 1.0)
    murmur /= murmur.std()
    for _ in range(3):  # a few overlapping syllable rhythms
        rate = rng.uniform(2.0, 5.0)
        murmur *= 1 + 0.3 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
    clinks = np.zeros(n)
    for _ in range(rng.integers(3, 10)):
        start = int(rng.integers(0, n - FS // 4))
        k = np.arange(FS // 4) / FS
        tone = np.sin(2 * np.pi * rng.uniform(2000, 6000) * k) * np.exp(-k * 30)
        clinks[start : start + len(k)] += rng.uniform(1.0, 4.0) * tone
    return murmur + clinks


def babble(n: int, rng: np.random.Generator) -> np.ndarray:
    voices = [f"{a}+{v}" for a in ACCENTS for vs in VARIANTS.values() for v in vs]
    wav = np.zeros(n)
    for _ in range(rng.integers(4, 8)):
        voice = voices[rng.integers(len(voices))]
        text = ". ".join(BABBLE_TEXT[i] for i in rng.permutation(len(BABBLE_TEXT)))
        pitch, rate = int(rng.integers(20, 80)), int(rng.integers(140, 220))
        talker = espeak(voice, text + ".", pitch, 100, rate)
        talker = np.resize(talker, n)  # tiled when short, cut when long
        talker = np.roll(talker, int(rng.integers(n)))
        wav += 10 ** (rng.uniform(-3, 3) / 20) * talker / (talker.std() + 1e-9)
    return wav


NOISE_TYPES: Dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "white": white,
    "pink": pink,
    "brown": brown,
    "hum": hum,
    "traffic": traffic,
    "cafe": cafe,
    "babble": babble,
}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Generate noise directories (one per type) for the mini recipe",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--outdir", type=Path, required=True)
    parser.add_argument("--num_per_type", type=int, default=10)
    parser.add_argument(
        "--types",
        default=",".join(NOISE_TYPES),
        help=f"Comma-separated noise types ({UNSEEN_TYPE} is the unseen one)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nj", type=int, default=1, help="Parallel jobs")
    return parser


def make_one(job: Tuple[str, int, int, str]) -> str:
    """Write noise file ``index`` of a type; returns its path."""
    kind, index, seed, path = job
    type_index = list(NOISE_TYPES).index(kind)
    rng = np.random.default_rng([seed, type_index, index])
    n = int(rng.uniform(*DURATION) * FS)
    wav = NOISE_TYPES[kind](n, rng)
    wav = wav * RMS / (np.sqrt(np.mean(wav**2)) + 1e-12)
    peak = np.abs(wav).max()
    if peak > PEAK:  # impulsive types (clinks) keep their shape, at a lower level
        wav *= PEAK / peak
    write_audio(path, wav, FS, "PCM_16")
    return path


def generate(
    outdir: Path, num_per_type: int = 10, types: str = "", seed: int = 0, nj: int = 1
) -> Dict[str, List[str]]:
    """Write the noise directories; returns type -> file paths."""
    kinds = [k.strip() for k in (types or ",".join(NOISE_TYPES)).split(",") if k]
    unknown = [k for k in kinds if k not in NOISE_TYPES]
    if unknown or not kinds or len(set(kinds)) != len(kinds):
        raise MeritInputError(
            f"--types {types!r}: expected distinct names of {','.join(NOISE_TYPES)}"
        )
    if num_per_type < 1 or nj < 1:
        raise MeritInputError(f"--num_per_type {num_per_type}, --nj {nj}: need >= 1")
    jobs = [
        (k, i, seed, str(outdir / k / f"{k}_{i:03d}.wav"))
        for k in kinds
        for i in range(num_per_type)
    ]
    files = {k: [j[3] for j in jobs if j[0] == k] for k in kinds}
    # v 2: v 1's babble could depend on libpulse's state (see espeak_env).
    stamp = json.dumps({"num": num_per_type, "types": kinds, "seed": seed, "v": 2})
    done = outdir / ".done"
    if done.is_file() and done.read_text() == stamp:
        logger.info(f"{outdir}: already generated with these options, skipping")
        return files
    done.unlink(missing_ok=True)
    for k in kinds:
        (outdir / k).mkdir(parents=True, exist_ok=True)
        for stale in (outdir / k).glob(f"{k}_*.wav"):  # of a larger earlier run
            if str(stale) not in files[k]:
                stale.unlink()
    if nj > 1:
        with multiprocessing.Pool(nj) as pool:
            list(tqdm(pool.imap(make_one, jobs), total=len(jobs), desc="noise"))
    else:
        for job in tqdm(jobs, desc="noise"):
            make_one(job)
    atomic_write_text(done, stamp)
    logger.info(
        f"wrote {num_per_type} files of each of {', '.join(kinds)} under {outdir} "
        f"(unseen type: {UNSEEN_TYPE})"
    )
    return files


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point(PROG):
        generate(args.outdir, args.num_per_type, args.types, args.seed, args.nj)


if __name__ == "__main__":
    main()
