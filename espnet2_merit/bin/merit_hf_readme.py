#!/usr/bin/env python3
"""Recipe stage 13: lay out a packed model for a Hugging Face model repository
(``espnet2_merit.recipe.hf_readme``).
"""

import argparse
from pathlib import Path

from espnet2_merit.utils.cli import entry_point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packed_model", type=Path, required=True)
    parser.add_argument("--hf_repo", required=True, help="owner/name")
    parser.add_argument("--exp", type=Path, required=True, help="Experiment dir")
    parser.add_argument("--run_args", default="", help="The recipe command")
    parser.add_argument("--outdir", type=Path, required=True)
    return parser


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point("merit_hf_readme"):
        from espnet2_merit.recipe.hf_readme import write_repo

        readme = write_repo(
            args.packed_model, args.hf_repo, args.exp, args.outdir, args.run_args
        )
        print(f"wrote {readme}")


if __name__ == "__main__":
    main()
