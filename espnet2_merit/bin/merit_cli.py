#!/usr/bin/env python3
"""``merit``: emotion, enhancement and routing of your own audio files.

    merit predict a.wav b.flac --model model.zip          # a table
    merit predict *.wav --model model.zip --json          # for machines
    merit predict a.wav --text "what a day" --model text_model.zip
    merit predict *.wav --text_file text --model text_model.zip
    merit predict *.wav --asr_model openai/whisper-small --model text_model.zip
    merit enhance noisy.wav -o clean.wav --model model.zip
    merit routes a.wav -o routes.png --model model.zip
    merit export --onnx ser.onnx --model model.zip

``--model`` is a packed zip, a URL or a Hugging Face repo; an experiment
directory's files can be given instead with ``--train_config`` and ``--model_file``.
"""

import argparse
import contextlib
import sys

from espnet2_merit.utils.cli import entry_point


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="merit", description="Speech emotion recognition and enhancement"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def model_args(p):
        p.add_argument("--model", help="Packed model: zip file, URL or HF repo")
        p.add_argument("--train_config", help="Or: a training config.yaml ...")
        p.add_argument("--model_file", help="... and its weights (*.pth)")
        p.add_argument("--device", default="cpu")
        p.add_argument(
            "--window_sec", type=_positive(float), default=20.0,
            help="Longest stretch the model sees at once (longer audio: windows)",
        )  # fmt: skip
        p.add_argument(
            "--overlap_sec", type=float, default=None,
            help="Overlap of the windows (default: a fifth of the window, <= 4 s)",
        )  # fmt: skip

    def text_args(p):  # models with a text frontend read transcripts
        text = p.add_mutually_exclusive_group()
        text.add_argument("--text", help="Transcript of the one file (text models)")
        text.add_argument(
            "--text_file",
            help="Transcripts: '<key> <words>' lines, the key a file's path or "
            "name without extension",
        )
        p.add_argument(
            "--asr_model",
            help="ASR model (transformers: hub name or folder) transcribing the "
            "files without a transcript",
        )

    p = sub.add_parser("predict", help="Emotion (and every utterance-level task)")
    p.add_argument("files", nargs="+")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON lines")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header")
    p.add_argument("--batch_size", type=_positive(int), default=1)
    text_args(p)
    model_args(p)

    p = sub.add_parser("enhance", help="Enhance one noisy file")
    p.add_argument("file")
    p.add_argument("-o", "--output", required=True, help="Audio file (.wav, .flac)")
    text_args(p)
    model_args(p)

    p = sub.add_parser("routes", help="Plot per-frame expert choices per task")
    p.add_argument("file")
    p.add_argument("-o", "--output", required=True, help="PNG file")
    text_args(p)
    model_args(p)

    p = sub.add_parser("export", help="Export one task's path to ONNX")
    p.add_argument("--onnx", required=True, help="Output .onnx file")
    p.add_argument("--task", help="Task to export (default: the first)")
    p.add_argument("--seconds", type=_positive(float), default=4.0, help="Input length")
    model_args(p)
    return parser


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    stdout = sys.stdout
    with entry_point(f"merit {args.command}", "WARNING"):
        from espnet2_merit.inference.commands import COMMANDS

        # Libraries print to stdout on import (ESPnet's flash-attention notice):
        # during the work it goes to stderr; stdout carries the results only.
        with contextlib.redirect_stdout(sys.stderr):
            text, ok = COMMANDS[args.command](args)
    print(text, file=stdout)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
