#!/usr/bin/env python3
"""Recipe stage 5: the emotion label list and the training set's class statistics
(``espnet2_merit.recipe.labels``).

    python -m espnet2_merit.bin.merit_labels --emotion_list data/emotion_list \
        --train_dir dump/raw/train_sim --check_dirs dump/raw/dev_sim ... \
        --outdir dump/raw
"""

import argparse
from pathlib import Path

from espnet2_merit.utils.cli import entry_point


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


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point("merit_labels"):
        from espnet2_merit.recipe.labels import class_stats

        print(
            class_stats(args.emotion_list, args.train_dir, args.check_dirs, args.outdir)
        )


if __name__ == "__main__":
    main()
