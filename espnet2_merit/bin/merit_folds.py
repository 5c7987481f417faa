#!/usr/bin/env python3
"""Average cross-validation folds (``espnet2_merit.scoring.folds``): per test set,
each fold's UA, WA, F1-macro (and attribute and enhancement scores) and their
mean ± sample standard deviation.

    python -m espnet2_merit.bin.merit_folds \
        --folds fold1=exp/fold1/merit_sparse_merit fold2=exp/fold2/merit_sparse_merit \
        --out exp/RESULTS_folds.md

Writes the markdown tables and their numbers as JSON (``RESULTS_folds.json``).
"""

import argparse
import logging
from pathlib import Path

from espnet2_merit.utils.cli import add_log_level, entry_point

logger = logging.getLogger("merit_folds")
PROG = "merit_folds"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Average the scored test sets of cross-validation folds",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--folds",
        nargs="+",
        required=True,
        help="name=dir words, one per fold; dir: the fold's experiment dir or "
        "decode dir",
    )
    parser.add_argument("--out", type=Path, required=True, help="Markdown to write")
    parser.add_argument("--decode_name", default="decode", help="<exp>/<this>/<set>")
    add_log_level(parser)
    return parser


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point(PROG, args.log_level):
        from espnet2_merit.scoring.compare import parse_systems
        from espnet2_merit.scoring.folds import write_fold_results

        folds = parse_systems(args.folds, "--folds")
        print(write_fold_results(folds, args.out, args.decode_name))
    logger.info(f"wrote {args.out}")


if __name__ == "__main__":
    main()
