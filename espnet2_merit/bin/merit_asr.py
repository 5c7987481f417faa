#!/usr/bin/env python3
"""Transcripts of speech by an ASR model (``espnet2_merit.asr``): a data dir's
``text`` where a corpus has none, or of its noisy speech, with the WER against the
reference transcripts (recipe stage 3, ``--asr_model``).

    python -m espnet2_merit.bin.merit_asr --wav_scp dump/raw/org/test1/wav.scp \
        --out dump/raw/org/test1/text --asr_model openai/whisper-small \
        --asr_conf language=en --asr_conf device=cuda \
        --ref_text dump/raw/org/test1/text.ref
"""

import argparse
import logging
from pathlib import Path
from typing import Optional

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.cli import add_log_level, entry_point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Transcribe a wav.scp into a Kaldi text file with a transformers "
        "ASR model (CTC or Whisper-like), optionally scoring the WER",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_log_level(parser)
    parser.add_argument("--wav_scp", type=Path, required=True, help="Speech to read")
    parser.add_argument(
        "--out", type=Path, required=True, help="Kaldi text file to write"
    )
    parser.add_argument(
        "--asr_model",
        required=True,
        help="Hub name or local folder of a transformers ASR model",
    )
    parser.add_argument(
        "--asr_conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Transcriber option (device, language, max_new_tokens, "
        "local_files_only, batch_size); repeatable",
    )
    parser.add_argument(
        "--ref_text",
        type=Path,
        default=None,
        help="Reference transcripts: log the WER of the output against them",
    )
    parser.add_argument(
        "--wer_out", type=Path, default=None, help="JSON file for the WER counts"
    )
    parser.add_argument(
        "--empty_text",
        default="<unk>",
        help="Written for an utterance in which no word was recognised",
    )
    return parser


def main(cmd: Optional[list] = None):
    args = get_parser().parse_args(cmd)
    with entry_point("merit_asr", args.log_level):
        from espnet2_merit.asr import Transcriber
        from espnet2_merit.asr.transcribe_dir import (
            parse_asr_conf,
            score_transcripts,
            transcribe_scp,
        )

        conf = parse_asr_conf(args.asr_conf)
        if args.wer_out is not None and args.ref_text is None:
            raise MeritInputError("--wer_out needs --ref_text")
        if args.ref_text is not None and not args.ref_text.is_file():
            raise MeritInputError(f"--ref_text {args.ref_text}: no such file")
        # an earlier output goes first: a run that dies (loading the model, or
        # half-way) leaves no transcripts that look finished
        args.out.unlink(missing_ok=True)
        transcriber = Transcriber(args.asr_model, **conf)
        hyps = transcribe_scp(transcriber, args.wav_scp, args.out, args.empty_text)
        logging.info(f"wrote {args.out} ({len(hyps)} utterances, {args.asr_model})")
        if args.ref_text is not None:
            result = score_transcripts(hyps, args.ref_text, args.wer_out)
            line = f"{args.out} against {args.ref_text}: {result}"
            logging.info(line)
            print(line)


if __name__ == "__main__":
    main()
