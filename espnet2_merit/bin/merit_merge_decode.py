#!/usr/bin/env python3
"""Recipe stage 9: split the inference shards back into one decode dir per set
(``espnet2_merit.inference.merge``).

    python -m espnet2_merit.bin.merit_merge_decode --sets test1_seen_snr-5 ... \
        --out_dir exp/m/decode exp/m/decode/logdir/output.*
"""

import argparse
from pathlib import Path

from espnet2_merit.utils.cli import add_log_level, entry_point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards", type=Path, nargs="+", help="Shard output dirs")
    parser.add_argument("--sets", nargs="+", required=True, help="Set names")
    parser.add_argument("--out_dir", type=Path, required=True, help="Decode dir")
    parser.add_argument(
        "--waveforms_from",
        type=Path,
        help="Decode dir whose waveform tasks join each set (SE pre-processing)",
    )
    add_log_level(parser)
    return parser


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point("merit_merge_decode", args.log_level):
        from espnet2_merit.inference.merge import merge

        merge(args.shards, args.sets, args.out_dir, args.waveforms_from)


if __name__ == "__main__":
    main()
