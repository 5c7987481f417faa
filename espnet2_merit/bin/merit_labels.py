#!/usr/bin/env python3
"""Recipe stage 5: the emotion label list and the training set's class statistics.

Writes ``<outdir>/emotion_list`` (one class per line, the order of the model's
outputs) and ``<outdir>/class_stats`` (class, count, share, loss weight
N / (C * count_c) -- the weights ``class_weights: balanced`` computes), after
checking that every label of the training set and of the other given sets is in
the list and that every class has training data.

    python -m espnet2_merit.bin.merit_labels --emotion_list data/emotion_list \
        --train_dir dump/raw/train_sim --check_dirs dump/raw/dev_sim ... \
        --outdir dump/raw
"""

import argparse
import os
import sys
from pathlib import Path
from typing import List, Sequence

from espnet2_merit.errors import MeritInputError
from espnet2_merit.train.data_check import label_counts


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Emotion label list and class statistics (recipe stage 5)"
    )
    parser.add_argument("--emotion_list", type=Path, required=True)
    parser.add_argument("--train_dir", type=Path, required=True)
    parser.add_argument(
        "--check_dirs", type=Path, nargs="*", default=[], help="Sets to check"
    )
    parser.add_argument("--outdir", type=Path, required=True)
    return parser


def read_list(path: Path) -> List[str]:
    """Class names, one per line; duplicates and an empty list are errors."""
    if not path.is_file():
        raise MeritInputError(f"--emotion_list: no such file {path}")
    classes = path.read_text(encoding="utf-8").split()
    if not classes or len(set(classes)) != len(classes):
        raise MeritInputError(f"{path}: expected distinct class names, got {classes}")
    return classes


def class_stats(
    emotion_list: Path, train_dir: Path, check_dirs: Sequence[Path], outdir: Path
) -> str:
    """Check the labels, write the files; returns the statistics table."""
    classes = read_list(emotion_list)
    train = train_dir / "emotion"
    if not train.is_file():
        raise MeritInputError(f"{train}: no such file (stage 5 needs train labels)")
    counts = label_counts(str(train), classes)
    for d in check_dirs:
        if (d / "emotion").is_file():  # unlabeled sets (Test3) have none
            label_counts(str(d / "emotion"), classes)
    missing = [c for c, n in zip(classes, counts) if n == 0]
    if missing:
        raise MeritInputError(f"{train}: no training utterance of class {missing}")
    total = sum(counts)
    rows = ["class count share weight"]
    for c, n in zip(classes, counts):
        rows.append(f"{c} {n} {n / total:.4f} {total / (len(classes) * n):.6f}")
    outdir.mkdir(parents=True, exist_ok=True)
    for name, lines in (("emotion_list", classes), ("class_stats", rows)):
        text = "\n".join(lines)
        tmp = outdir / f"{name}.tmp"
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, outdir / name)
    widths = [max(len(r.split()[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(v.rjust(w) for v, w in zip(r.split(), widths)) for r in rows
    )


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    try:
        print(
            class_stats(args.emotion_list, args.train_dir, args.check_dirs, args.outdir)
        )
    except MeritInputError as e:
        sys.exit(f"merit_labels: error: {e}")


if __name__ == "__main__":
    main()
