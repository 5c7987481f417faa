#!/usr/bin/env python3
"""Pack a trained MERIT model into an ESPnet model-zoo zip
(``espnet2_merit.utils.packing``).

    python -m espnet2_merit.bin.merit_pack --train_config exp/x/config.yaml \
        --model_file exp/x/valid.ser_f1_macro.best.pth --outpath exp/x/packed/model.zip
"""

import argparse

from espnet2_merit.utils.cli import entry_point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Pack a MERIT model (config, weights, the files they need) into "
        "an ESPnet model-zoo zip",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--train_config", required=True)
    parser.add_argument("--model_file", required=True)
    parser.add_argument("--outpath", required=True, help="The zip to write")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        help="Extra files to include (RESULTS.md, images, ...)",
    )
    return parser


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point("merit_pack"):
        from espnet2_merit.utils.packing import pack_model

        pack_model(args.train_config, args.model_file, args.outpath, args.option)


if __name__ == "__main__":
    main()
