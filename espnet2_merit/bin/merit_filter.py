#!/usr/bin/env python3
"""Recipe stage 4: keep the utterances whose duration is in [--min_sec, --max_sec]
(``espnet2_merit.recipe.filter``).

    python -m espnet2_merit.bin.merit_filter --min_sec 1.0 --max_sec 20 --fs 16000 \
        dump/raw/org/train_sim dump/raw/train_sim
"""

import argparse
from pathlib import Path
from typing import Optional

from espnet2_merit.utils.cli import entry_point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Keep utterances of a dump dir by duration (recipe stage 4)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--min_sec", type=float, default=1.0, help="Shortest kept")
    parser.add_argument("--max_sec", type=float, default=20.0, help="Longest kept")
    parser.add_argument(
        "--fs", type=int, default=16000, help="Sampling rate of utt2num_samples"
    )
    parser.add_argument("in_dir", type=Path, help="Dump dir with utt2num_samples")
    parser.add_argument("out_dir", type=Path, help="Filtered copy")
    return parser


def main(cmd: Optional[list] = None):
    args = get_parser().parse_args(cmd)
    with entry_point("merit_filter"):
        from espnet2_merit.recipe.filter import filter_dir

        filter_dir(args.in_dir, args.out_dir, args.min_sec, args.max_sec, args.fs)


if __name__ == "__main__":
    main()
