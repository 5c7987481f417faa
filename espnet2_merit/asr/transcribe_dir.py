"""Transcripts of a sound list (``wav.scp``) as a Kaldi ``text`` file, and their WER
against reference transcripts (``espnet2_merit.bin.merit_asr``, recipe stage 3)."""

import json
import logging
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Union

import numpy as np

from espnet2_merit.asr.wer import WerResult, corpus_wer
from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.datadir import (
    atomic_write_text,
    read_audio,
    read_kaldi,
    read_sound_scp,
    write_kaldi,
)

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

# Options of ``Transcriber`` given as "key=value" words (--asr_conf), and their types.
CONF_TYPES = {
    "device": str,
    "batch_size": int,
    "local_files_only": bool,
    "language": str,
    "max_new_tokens": int,
}
# Utterances read (and held in memory) at a time.
CHUNK = 64


def parse_asr_conf(items: Optional[Iterable[str]]) -> Dict[str, Any]:
    """``Transcriber`` keyword arguments from "key=value" words.

    Booleans are true/false (yes/no, 1/0), integers decimal, strings as they are
    (``language=no`` is Norwegian, not false); ``none`` gives None (the default
    language detection).

    Raises:
        MeritInputError: A word without "=", an unknown or repeated key, or a value
            of the wrong type (naming the word).
    """
    conf: Dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise MeritInputError(f"--asr_conf {item!r}: expected key=value")
        if key not in CONF_TYPES:
            raise MeritInputError(
                f"--asr_conf {item!r}: unknown option '{key}' (one of "
                f"{', '.join(CONF_TYPES)})"
            )
        if key in conf:
            raise MeritInputError(f"--asr_conf {item!r}: '{key}' given twice")
        kind, value = CONF_TYPES[key], value.strip()
        if kind is str and value.lower() in ("none", "null") and key == "language":
            conf[key] = None
        elif kind is bool:
            truth = {"true": True, "yes": True, "1": True}
            truth.update({"false": False, "no": False, "0": False})
            if value.lower() not in truth:
                raise MeritInputError(f"--asr_conf {item!r}: expected true or false")
            conf[key] = truth[value.lower()]
        elif kind is int:
            try:
                conf[key] = int(value)
            except ValueError:
                raise MeritInputError(
                    f"--asr_conf {item!r}: expected an integer"
                ) from None
        else:
            conf[key] = value
    return conf


def transcribe_scp(
    transcriber,
    wav_scp: PathLike,
    out: PathLike,
    empty_text: str = "<unk>",
) -> Dict[str, str]:
    """Transcribe every utterance of a sound list into a Kaldi text file.

    The output (``<utt> <words>`` lines, sorted) is written atomically at the end
    (``<out>.tmp`` and a rename); ``merit_asr`` removes an earlier ``out`` before
    it loads the model, so that a run killed half-way leaves no file a re-run
    could take as finished.

    Args:
        transcriber: An ``espnet2_merit.asr.Transcriber``.
        wav_scp: "<utt> <audio file>" lines; multi-channel audio is averaged.
        out: The text file to write.
        empty_text: Written for an utterance in which the model recognised no
            word (a Kaldi text line needs one; ``<unk>`` is the text frontends'
            unknown token).

    Returns:
        Utterance -> transcript (as written).

    Raises:
        MeritInputError: A bad line in ``wav_scp``, unreadable audio, or an
            ``empty_text`` that is not one word.
    """
    if len(empty_text.split()) != 1:
        raise MeritInputError(f"empty_text must be one word, got {empty_text!r}")
    table = read_sound_scp(wav_scp)
    utts = list(table)
    texts: Dict[str, str] = {}
    for start in range(0, len(utts), CHUNK):
        by_fs: Dict[int, list] = {}
        for utt in utts[start : start + CHUNK]:
            wav, fs = read_audio(table[utt], f"{wav_scp}: utterance '{utt}'")
            by_fs.setdefault(fs, []).append((utt, wav.mean(axis=1)))
        for fs, items in by_fs.items():
            names = [u for u, _ in items]
            out_texts = transcriber.transcribe(
                [np.asarray(w, dtype=np.float32) for _, w in items], fs, names=names
            )
            texts.update(zip(names, out_texts))
        logger.info(f"{wav_scp}: {len(texts)}/{len(utts)} utterances transcribed")
    empty = [u for u in utts if not texts[u]]
    if empty:
        logger.warning(
            f"{wav_scp}: no word recognised in {len(empty)} utterances (first: "
            f"'{empty[0]}'): written as {empty_text}"
        )
    texts = {u: texts[u] or empty_text for u in utts}
    write_kaldi(out, texts)
    return texts


def score_transcripts(
    hyps: Dict[str, str], ref_text: PathLike, wer_out: Optional[PathLike] = None
) -> WerResult:
    """WER of ``hyps`` against a Kaldi text file of references (its utterances that
    have a hypothesis; an utterance of the references without one is an error),
    written as JSON to ``wer_out`` if given."""
    refs = read_kaldi(ref_text)
    missing = [u for u in refs if u not in hyps]
    if missing:
        raise MeritInputError(
            f"{ref_text}: {len(missing)} utterances are not in the transcribed list "
            f"(first: '{missing[0]}')"
        )
    result = corpus_wer(refs, hyps)
    if wer_out is not None:
        atomic_write_text(
            wer_out, json.dumps({"ref_text": str(ref_text), **result.as_dict()}) + "\n"
        )
    return result
