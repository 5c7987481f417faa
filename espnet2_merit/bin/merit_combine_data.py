#!/usr/bin/env python3
"""Recipe stage 1 (``--unlabelled_sets``): a training set and unlabelled pools
as one data directory, the pools' labels ``-`` (``espnet2_merit.recipe.combine``).

    python -m espnet2_merit.bin.merit_combine_data --unlabelled data/test3 \
        data/train data/train_semi
"""

import argparse
from pathlib import Path
from typing import Optional

from espnet2_merit.utils.cli import entry_point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Combine a labelled data dir with unlabelled pools",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--unlabelled",
        type=Path,
        action="append",
        required=True,
        help="A data dir whose utterances train without labels (repeatable)",
    )
    parser.add_argument("labelled", type=Path, help="The labelled training set")
    parser.add_argument("out_dir", type=Path, help="The combined data dir")
    return parser


def main(cmd: Optional[list] = None):
    args = get_parser().parse_args(cmd)
    with entry_point("merit_combine_data"):
        from espnet2_merit.recipe.combine import combine

        combine(args.labelled, args.unlabelled, args.out_dir)


if __name__ == "__main__":
    main()
