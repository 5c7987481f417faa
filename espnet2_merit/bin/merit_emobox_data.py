#!/usr/bin/env python3
"""Recipe stage 1 from an EmoBox fold (``espnet2_merit.recipe.emobox``): EmoBox's
published train/test split of one corpus as data directories train, dev, test.

    python -m espnet2_merit.bin.merit_emobox_data --emobox_dir EmoBox/data/iemocap \
        --fold 1 --corpus_dir /path/to/IEMOCAP_full_release --outdir data/fold1 \
        --class_map ang=A,sad=S,hap=H,exc=H,neu=N
"""

import argparse
from pathlib import Path
from typing import Optional, Sequence

from espnet2_merit.utils.cli import entry_point

PROG = "merit_emobox_data"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--emobox_dir",
        type=Path,
        required=True,
        help="EmoBox's data/<corpus> folder (fold_<n>/, label_map.json, ...)",
    )
    parser.add_argument("--fold", type=int, default=1, help="EmoBox fold number")
    parser.add_argument(
        "--corpus_dir",
        type=Path,
        required=True,
        help="The corpus's local root, which replaces --emobox_prefix in the paths",
    )
    parser.add_argument(
        "--emobox_prefix",
        default=None,
        help="Start of EmoBox's wav paths that --corpus_dir replaces "
        "(default: downloads/<corpus>)",
    )
    parser.add_argument("--outdir", type=Path, default=Path("data"))
    parser.add_argument(
        "--class_map",
        default=None,
        help="'code=class,...' (only these codes kept; 'code' keeps one as is), "
        "'emobox' (label_map.json's merge), or none: every code its own class",
    )
    parser.add_argument(
        "--dev_by",
        choices=("speaker", "utterance"),
        default="speaker",
        help="Unit of the dev share of train (when the fold has no valid file)",
    )
    parser.add_argument(
        "--dev_ratio", type=float, default=0.1, help="Share of the train units in dev"
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the dev draw")
    parser.add_argument(
        "--dev_list",
        type=Path,
        default=None,
        help="Read the dev units (as written to <outdir>/dev_list.txt) instead of "
        "drawing them",
    )
    return parser


def main(cmd: Optional[Sequence[str]] = None):
    args = get_parser().parse_args(cmd)
    with entry_point(PROG):
        from espnet2_merit.recipe.emobox import format_summary, prepare

        summary = prepare(
            args.emobox_dir,
            args.fold,
            args.corpus_dir,
            args.outdir,
            class_map=args.class_map,
            dev_by=args.dev_by,
            dev_ratio=args.dev_ratio,
            seed=args.seed,
            dev_list=args.dev_list,
            emobox_prefix=args.emobox_prefix,
        )
    print(format_summary(summary))


if __name__ == "__main__":
    main()
