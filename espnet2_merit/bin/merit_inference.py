#!/usr/bin/env python3
"""Decode one shard of a data dir with a trained MERIT model (recipe stage 9).

    python -m espnet2_merit.bin.merit_inference --train_config exp/x/config.yaml \
        --model_file exp/x/valid.ser_f1_macro.best.pth \
        --data_path_and_name_and_type dump/raw/test1/wav.scp,speech,sound \
        --key_file exp/x/decode/logdir/keys/keys.1 --output_dir exp/x/decode/out.1

A model with a text frontend reads the transcripts too: a second
``--data_path_and_name_and_type dump/raw/test1/text,text,text`` (Kaldi text, the
keys of the wav.scp), or ``--asr_model`` transcribes the audio.

Writes each task's outputs and ``outputs.json`` (see
``espnet2_merit.inference.decode_dir``).
"""

import argparse
from pathlib import Path
from typing import Dict, Optional, Tuple

from espnet2.utils import config_argparse
from espnet2.utils.types import str2bool, str2triple_str, str_or_none

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.cli import add_log_level, entry_point


def get_parser() -> config_argparse.ArgumentParser:
    parser = config_argparse.ArgumentParser(
        description="MERIT inference over a data dir: every task's outputs and the "
        "routing statistics",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_log_level(parser)
    parser.add_argument("--output_dir", type=str, required=True)
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batch_size", type=int, default=1)
    group = parser.add_argument_group("Input data related")
    group.add_argument(
        "--data_path_and_name_and_type",
        type=str2triple_str,
        required=True,
        action="append",
        help="The noisy speech: <wav.scp>,speech,sound; and for a model with a "
        "text frontend its transcripts: <text>,text,text",
    )
    group.add_argument(
        "--key_file", type=str_or_none, help="Only these utterances (one shard)"
    )
    group = parser.add_argument_group("The model")
    group.add_argument("--train_config", type=str_or_none)
    group.add_argument("--model_file", type=str_or_none)
    group.add_argument(
        "--model_tag", type=str_or_none, help="Packed model: zip, URL or HF repo"
    )
    group = parser.add_argument_group("Inference related")
    group.add_argument("--enhance", type=str2bool, default=True)
    group.add_argument("--window_sec", type=float, default=20.0)
    group.add_argument("--overlap_sec", type=float, default=None)
    group.add_argument(
        "--asr_model",
        type=str_or_none,
        default=None,
        help="ASR model transcribing utterances for a model with a text frontend "
        "(without a <text>,text,text entry)",
    )
    group.add_argument(
        "--asr_conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Option of the ASR transcriber (device, language, max_new_tokens, "
        "local_files_only, batch_size); repeatable",
    )
    return parser


def data_files(entries) -> Tuple[str, Optional[str]]:
    """The wav.scp and the transcripts (or None) of the data options."""
    found: Dict[Tuple[str, str], str] = {}
    for path, name, kind in entries:
        if (name, kind) not in (("speech", "sound"), ("text", "text")):
            raise MeritInputError(
                f"--data_path_and_name_and_type {path},{name},{kind}: expected "
                "'<wav.scp>,speech,sound' or '<text>,text,text'"
            )
        if (name, kind) in found:
            raise MeritInputError(f"--data_path_and_name_and_type: '{name}' twice")
        found[name, kind] = path
    if ("speech", "sound") not in found:
        raise MeritInputError(
            "--data_path_and_name_and_type: expected one '<wav.scp>,speech,sound'"
        )
    return found["speech", "sound"], found.get(("text", "text"))


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point("merit_inference", args.log_level):
        from espnet2_merit.asr.transcribe_dir import parse_asr_conf
        from espnet2_merit.inference.decode_dir import decode
        from espnet2_merit.inference.speech2emotion import Speech2EmotionEnhance

        path, text_file = data_files(args.data_path_and_name_and_type)
        kwargs = dict(
            device="cuda" if args.ngpu > 0 else "cpu",
            dtype=args.dtype,
            batch_size=args.batch_size,
            window_sec=args.window_sec,
            overlap_sec=args.overlap_sec,
            enhance=args.enhance,
            asr_model=args.asr_model,
            asr_conf=parse_asr_conf(args.asr_conf) or None,
        )
        if args.model_tag is not None:
            s2e = Speech2EmotionEnhance.from_pretrained(args.model_tag, **kwargs)
        elif args.train_config is not None:
            s2e = Speech2EmotionEnhance(args.train_config, args.model_file, **kwargs)
        else:
            raise MeritInputError("give --model_tag or --train_config/--model_file")
        decode(
            s2e, path, Path(args.output_dir), args.key_file, args.batch_size, text_file
        )


if __name__ == "__main__":
    main()
