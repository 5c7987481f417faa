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

from pathlib import Path
from typing import Sequence

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import LabelTarget
from espnet2_merit.train.data_check import label_counts
from espnet2_merit.utils.datadir import atomic_write_text, read_list


def class_stats(
    emotion_list: Path, train_dir: Path, check_dirs: Sequence[Path], outdir: Path
) -> str:
    """Check the labels, write the files; returns the statistics table."""
    classes = read_list(emotion_list, "--emotion_list")
    target = LabelTarget("emotion", classes, str(emotion_list))
    train = train_dir / "emotion"
    if not train.is_file():
        raise MeritInputError(f"{train}: no such file (stage 5 needs train labels)")
    counts = label_counts(str(train), target)
    for d in check_dirs:
        if (d / "emotion").is_file():  # unlabeled sets (Test3) have none
            label_counts(str(d / "emotion"), target)
    missing = [c for c, n in zip(classes, counts) if n == 0]
    if missing:
        raise MeritInputError(f"{train}: no training utterance of class {missing}")
    total = sum(counts)
    rows = ["class count share weight"]
    for c, n in zip(classes, counts):
        rows.append(f"{c} {n} {n / total:.4f} {total / (len(classes) * n):.6f}")
    outdir.mkdir(parents=True, exist_ok=True)
    for name, lines in (("emotion_list", classes), ("class_stats", rows)):
        atomic_write_text(outdir / name, "\n".join(lines) + "\n")
    widths = [max(len(r.split()[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(v.rjust(w) for v, w in zip(r.split(), widths)) for r in rows
    )
