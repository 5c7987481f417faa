#!/usr/bin/env python3
"""Recipe stage 2a: split noise recordings (or RIRs, ``--kind rir``) into disjoint train/dev/test pools (``espnet2_merit.simulation.noise_pools``)."""

import argparse
from pathlib import Path

from espnet2_merit.simulation.noise_pools import KINDS
from espnet2_merit.utils.cli import entry_point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Split noise directories into disjoint train/dev/test pools",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--seen_dirs",
        required=True,
        help="Space-separated noise directories (one noise type each) split into "
        "train/dev/test_seen pools",
    )
    parser.add_argument(
        "--unseen_dirs",
        default="",
        help="Space-separated noise directories used only for test_unseen",
    )
    parser.add_argument("--outdir", type=Path, required=True)
    parser.add_argument(
        "--dev_ratio", type=float, default=0.1, help="Share of each seen dir for dev"
    )
    parser.add_argument(
        "--test_ratio",
        type=float,
        default=0.2,
        help="Share of each seen dir for test_seen",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--kind",
        choices=tuple(KINDS),
        default="noise",
        help="What the directories hold: noise recordings, or room impulse "
        "responses (one room type per directory)",
    )
    return parser


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point("merit_prepare_noise"):
        from espnet2_merit.simulation.noise_pools import prepare_noise

        prepare_noise(
            [Path(d) for d in args.seen_dirs.split()],
            [Path(d) for d in args.unseen_dirs.split()],
            args.outdir,
            dev_ratio=args.dev_ratio,
            test_ratio=args.test_ratio,
            seed=args.seed,
            kind=args.kind,
        )


if __name__ == "__main__":
    main()
