"""Recipe stage 4: keep the utterances whose duration is in [--min_sec, --max_sec].

    python -m espnet2_merit.bin.merit_filter --min_sec 1.0 --max_sec 20 --fs 16000 \
        dump/raw/org/train_sim dump/raw/train_sim

Durations come from ``<in_dir>/utt2num_samples`` (stage 3). Every per-utterance
file (wav.scp, spk1.scp, utt2num_samples, emotion, emotion_attr, utt2spk,
utt2gender, utt2snr, utt2noise) is written to the output dir with the kept
utterances only; emotion_list is copied. The counts kept / too short / too long
are logged; nothing left is an error.
"""

import logging
import os
import shutil
from pathlib import Path
from typing import Dict

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.datadir import (
    KEYED_TEXT_FILES,
    SOUND_SCPS,
    read_kaldi,
    write_kaldi,
)

PROG = "merit_filter"
KEYED_FILES = (*SOUND_SCPS, "utt2num_samples", *KEYED_TEXT_FILES)
logger = logging.getLogger(PROG)


def filter_dir(
    in_dir: Path, out_dir: Path, min_sec: float, max_sec: float, fs: int
) -> Dict[str, int]:
    """Write the filtered copy; returns the counts kept / too_short / too_long."""
    if fs < 1:
        raise MeritInputError(f"--fs must be positive, got {fs}")
    if not 0 <= min_sec <= max_sec:
        raise MeritInputError(
            f"expected 0 <= --min_sec <= --max_sec, got {min_sec} and {max_sec}"
        )
    if out_dir.resolve() == in_dir.resolve():
        raise MeritInputError("the output dir must differ from the input dir")
    wav = read_kaldi(in_dir / "wav.scp")
    lengths_path = in_dir / "utt2num_samples"
    table = read_kaldi(lengths_path)
    counts = {"kept": 0, "too_short": 0, "too_long": 0}
    kept = set()
    for utt in wav:
        if utt not in table:
            raise MeritInputError(f"{lengths_path}: no entry for utterance '{utt}'")
        try:
            n = int(table[utt])
        except ValueError:
            raise MeritInputError(
                f"{lengths_path}: utterance '{utt}': expected a number of samples, "
                f"got {table[utt]!r}"
            ) from None
        sec = n / fs
        if sec < min_sec:
            counts["too_short"] += 1
        elif sec > max_sec:
            counts["too_long"] += 1
        else:
            counts["kept"] += 1
            kept.add(utt)
    logger.info(
        f"{in_dir}: {len(wav)} utterances: kept {counts['kept']}, too short "
        f"{counts['too_short']} (< {min_sec} s), too long {counts['too_long']} "
        f"(> {max_sec} s)"
    )
    if not kept:
        raise MeritInputError(
            f"{in_dir}: no utterance is between {min_sec} and {max_sec} s "
            f"({len(wav)} utterances at {fs} Hz; check --min_sec/--max_sec/--fs)"
        )

    out_dir.mkdir(parents=True, exist_ok=True)
    for name in KEYED_FILES:
        if (in_dir / name).is_file():
            rows = read_kaldi(in_dir / name)
            write_kaldi(out_dir / name, {k: v for k, v in rows.items() if k in kept})
    if (in_dir / "emotion_list").is_file():
        tmp = out_dir / "emotion_list.tmp"
        shutil.copyfile(in_dir / "emotion_list", tmp)
        os.replace(tmp, out_dir / "emotion_list")
    skipped = sorted(
        p.name
        for p in in_dir.iterdir()
        if p.is_file()
        and p.name not in (*KEYED_FILES, "emotion_list")
        and not p.name.startswith(".")
    )
    if skipped:
        logger.warning(f"{in_dir}: not copied (unknown files): {' '.join(skipped)}")
    return counts
