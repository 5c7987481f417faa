#!/usr/bin/env python3
"""Recipe stage 3: audio of a data directory as mono wav files at one rate
(``espnet2_merit.recipe.format_wav``).

    python -m espnet2_merit.bin.merit_format_wav --fs 16000 --nj 4 data/X dump/raw/X
"""

import argparse
from pathlib import Path
from typing import Optional

from espnet2_merit.utils.cli import entry_point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Format a data dir's audio as mono wav at one sampling rate "
        "(recipe stage 3)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--fs", type=int, default=16000, help="Sampling rate (Hz)")
    parser.add_argument("--nj", type=int, default=1, help="Parallel processes")
    parser.add_argument("in_dir", type=Path, help="Data dir (wav.scp [spk1.scp])")
    parser.add_argument("out_dir", type=Path, help="Output dir (dump/raw/<set>)")
    return parser


def main(cmd: Optional[list] = None):
    args = get_parser().parse_args(cmd)
    with entry_point("merit_format_wav"):
        from espnet2_merit.recipe.format_wav import format_dir

        format_dir(args.in_dir, args.out_dir, args.fs, args.nj)


if __name__ == "__main__":
    main()
