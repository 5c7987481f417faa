#!/usr/bin/env python3
"""Split the keys of a Kaldi-style file into contiguous shards for parallel jobs
(``espnet2_merit.recipe.split``); prints the number of shards.

    python -m espnet2_merit.bin.merit_split --nj 4 data/test/wav.scp exp/logdir/keys
"""

import argparse
from pathlib import Path
from typing import Optional, Sequence

from espnet2_merit.utils.cli import entry_point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nj", type=int, required=True, help="Shards at most")
    parser.add_argument("scp", type=Path, help="File whose first column is the key")
    parser.add_argument("outdir", type=Path, help="Where keys.1 ... keys.N go")
    return parser


def main(cmd: Optional[Sequence[str]] = None):
    args = get_parser().parse_args(cmd)
    with entry_point("merit_split"):
        from espnet2_merit.recipe.split import split_keys

        print(split_keys(args.scp, args.nj, args.outdir))


if __name__ == "__main__":
    main()
