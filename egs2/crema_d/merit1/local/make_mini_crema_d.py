#!/usr/bin/env python3
"""Generate a miniature of CREMA-D in the release's layout, in seconds.

    python local/make_mini_crema_d.py --outdir downloads/mini_crema_d [--actors 6] \
        [--seed 0]

Writes, like the release (github.com/CheyneyComputerScience/CREMA-D: README.md,
VideoDemographics.csv and the AudioWAV/ listing),

  <outdir>/AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav  16 kHz mono 16-bit
  <outdir>/VideoDemographics.csv  "ActorID","Age","Sex","Race","Ethnicity" (quoted
                                  as in the release: strings quoted, numbers not)

for ``--actors`` actors drawn from 1001-1091 (half Male, half Female, the odd one
drawn; Age, Race, Ethnicity drawn from the release's values). As in the release,
only sentence IEO has levels LO, MD and HI (one file each per emotion other than
neutral) and a neutral IEO_NEU_XX; each actor also says ``SENTENCES_PER_ACTOR``
other sentences (drawn) in all six emotions at level XX. So every actor has
5 files of each of ANG DIS FEA HAP SAD and 3 of NEU (``FILES_PER_ACTOR``).

Audio is ``espnet2_merit.utils.synthetic.voice``, whose class-dependent prosody
exists for A S H N; FEA is H's voice with a 7 Hz tremor, DIS S's voice with a
30 Hz creak (amplitude modulation), so all six classes differ. The level scales
the loudness (LO 0.7, MD 1, HI 1.3, XX 1). Durations are drawn in 1.2-2.4 s (the
release: about 1.3-5 s). Every draw comes from --seed: a seed gives the same files.
``<outdir>/.done`` records the options; a re-run with the same ones skips, other
ones regenerate (AudioWAV/ is emptied first).
"""

import argparse
import csv
import io
import json
import logging
import shutil
from pathlib import Path
from typing import Dict, List, NamedTuple

import numpy as np
import soundfile

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.cli import entry_point
from espnet2_merit.utils.datadir import atomic_write_text, quantize_pcm16
from espnet2_merit.utils.synthetic import voice

PROG = "make_mini_crema_d.py"
FS = 16000
ACTOR_IDS = range(1001, 1092)
SENTENCES = (
    "IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI",
)  # fmt: skip
EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
# CREMA-D emotion -> the synthetic voice's class, and the modulation (Hz, depth)
# that sets FEA and DIS apart from the voices they borrow.
VOICE = {"ANG": "A", "DIS": "S", "FEA": "H", "HAP": "H", "NEU": "N", "SAD": "S"}
MODULATION = {"FEA": (7.0, 0.5), "DIS": (30.0, 0.6)}
LEVEL_GAIN = {"LO": 0.7, "MD": 1.0, "HI": 1.3, "XX": 1.0}
SENTENCES_PER_ACTOR = 2  # besides IEO
FILES_PER_ACTOR = 5 * 3 + 1 + SENTENCES_PER_ACTOR * len(EMOTIONS)
SECONDS = (1.2, 2.4)
PEAK = 0.9
RACES = ("African American", "Asian", "Caucasian", "Unknown")
ETHNICITIES = ("Hispanic", "Not Hispanic")
DEMOGRAPHICS_HEADER = ("ActorID", "Age", "Sex", "Race", "Ethnicity")
VERSION = 1
logger = logging.getLogger(PROG)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Generate a miniature CREMA-D (AudioWAV/, VideoDemographics.csv)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--outdir", type=Path, required=True)
    parser.add_argument("--actors", type=int, default=6, help="Number of actors (2-91)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


class Item(NamedTuple):
    name: str  # file name
    emotion: str
    level: str


def actor_items(actor: int, rng: np.random.Generator) -> List[Item]:
    """The files of one actor (``FILES_PER_ACTOR``), by name."""
    items = [Item(f"{actor}_IEO_NEU_XX.wav", "NEU", "XX")]
    for emo in EMOTIONS:
        if emo != "NEU":
            for level in ("LO", "MD", "HI"):
                items.append(Item(f"{actor}_IEO_{emo}_{level}.wav", emo, level))
    others = rng.choice(len(SENTENCES) - 1, SENTENCES_PER_ACTOR, replace=False)
    for i in sorted(others):
        sentence = SENTENCES[1 + i]
        items += [Item(f"{actor}_{sentence}_{e}_XX.wav", e, "XX") for e in EMOTIONS]
    return sorted(items)


def synthesise(item: Item, rng: np.random.Generator) -> np.ndarray:
    wav = voice(VOICE[item.emotion], rng.uniform(*SECONDS), FS, rng)
    if item.emotion in MODULATION:
        hz, depth = MODULATION[item.emotion]
        t = np.arange(len(wav)) / FS
        wav = wav * (1 - depth * 0.5 * (1 + np.sin(2 * np.pi * hz * t)))
    wav = wav * LEVEL_GAIN[item.level]
    peak = float(np.abs(wav).max())
    return wav / max(1.0, peak / PEAK)


def write_wav(path: Path, wav: np.ndarray) -> None:
    """16-bit PCM wav, encoded in memory (libsndfile syncs a file on closing it,
    which would take most of the time here); ``.done`` marks a complete corpus."""
    buf = io.BytesIO()
    soundfile.write(buf, quantize_pcm16(wav), FS, subtype="PCM_16", format="WAV")
    path.write_bytes(buf.getvalue())


def demographics_csv(rows: List[Dict]) -> str:
    """The table as the release writes it: header and strings quoted."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writerow(DEMOGRAPHICS_HEADER)
    for r in rows:
        writer.writerow([r[h] for h in DEMOGRAPHICS_HEADER])
    return buf.getvalue()


def generate(outdir: Path, actors: int = 6, seed: int = 0) -> Path:
    """Write the miniature; returns its AudioWAV directory. Skips when
    ``<outdir>/.done`` records the same options."""
    if not 2 <= actors <= len(ACTOR_IDS):
        raise MeritInputError(f"--actors {actors}: expected 2-{len(ACTOR_IDS)}")
    audio_dir = outdir / "AudioWAV"
    stamp = json.dumps({"actors": actors, "seed": seed, "version": VERSION})
    done = outdir / ".done"
    if audio_dir.is_dir() and done.is_file() and done.read_text() == stamp:
        logger.info(f"{outdir}: already generated with these options, skipping")
        return audio_dir
    done.unlink(missing_ok=True)
    if audio_dir.exists():
        shutil.rmtree(audio_dir)
    audio_dir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    ids = sorted(int(a) for a in rng.choice(ACTOR_IDS, actors, replace=False))
    sexes = ["Male", "Female"] * (actors // 2) + (
        [str(rng.choice(["Male", "Female"]))] if actors % 2 else []
    )
    sexes = [sexes[i] for i in rng.permutation(actors)]
    rows, n_files, seconds = [], 0, 0.0
    for actor, sex in zip(ids, sexes):
        rows.append(
            {
                "ActorID": actor,
                "Age": int(rng.integers(20, 75)),
                "Sex": sex,
                "Race": str(rng.choice(RACES)),
                "Ethnicity": str(rng.choice(ETHNICITIES)),
            }
        )
        for item in actor_items(actor, rng):
            wav = synthesise(item, rng)
            write_wav(audio_dir / item.name, wav)
            n_files += 1
            seconds += len(wav) / FS
    atomic_write_text(outdir / "VideoDemographics.csv", demographics_csv(rows))
    atomic_write_text(done, stamp)
    logger.info(f"{outdir}: {n_files} files of {actors} actors, {seconds / 60:.1f} min")
    return audio_dir


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point(PROG):
        generate(args.outdir, args.actors, args.seed)


if __name__ == "__main__":
    main()
