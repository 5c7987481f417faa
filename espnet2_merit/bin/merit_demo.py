#!/usr/bin/env python3
"""Tiny end-to-end run: generated data + a tiny random WavLM -> one epoch of
Sparse MERIT training with ESPnet's trainer, on CPU in about a minute."""

import argparse
import sys
from pathlib import Path

from espnet2_merit.utils.datadir import data_options
from espnet2_merit.utils.ssl_checkpoint import make_wavlm_checkpoint
from espnet2_merit.utils.synthetic import make_data_dir

CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "tuning"  # package data
NAMES = ("speech", "speech_ref1", "emotion")  # what the sparse config trains on


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outdir", type=Path, default=Path("exp/demo"))
    parser.add_argument(
        "--config", type=Path, default=CONF_DIR / "train_sparse_merit_tiny.yaml"
    )
    parser.add_argument("--num_utts", type=int, default=20)
    parser.add_argument("--max_epoch", type=int, default=1)
    return parser


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    out = args.outdir.resolve()
    ckpt = make_wavlm_checkpoint(out / "ssl" / "wavlm_tiny.pt", "tiny", seed=0)
    train = make_data_dir(out / "data" / "train", args.num_utts, seed=1)
    valid = make_data_dir(out / "data" / "valid", max(4, args.num_utts // 4), seed=2)

    cmd = [
        "--config",
        str(args.config),
        "--frontend_conf",
        f"path_or_url={ckpt}",
        "--emotion_list",
        str(train / "emotion_list"),
        "--output_dir",
        str(out / "exp"),
        "--max_epoch",
        str(args.max_epoch),
        "--ngpu",
        "0",
        *data_options("train", train, NAMES),
        *data_options("valid", valid, NAMES),
        "--train_shape_file",
        str(train / "wav.scp"),
        "--valid_shape_file",
        str(valid / "wav.scp"),
    ]
    from espnet2_merit.bin.merit_train import main as train_main

    train_main(cmd)
    print(f"demo finished: model and logs in {out / 'exp'}", file=sys.stderr)


if __name__ == "__main__":
    main()
