"""Checks a training run's data before the first batch, with messages that name
the file, the line and what was expected."""

import argparse
import collections
import logging
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple

import soundfile

from espnet2_merit.errors import MeritInputError

logger = logging.getLogger(__name__)


def read_scp(path: str) -> Iterator[Tuple[int, str, str]]:
    """Yield (line number, key, value) of a Kaldi-style "key value" file."""
    with open(path, encoding="utf-8") as f:
        for num, line in enumerate(f, 1):
            if not line.strip():
                continue
            key, _, value = line.strip().partition(" ")
            if not value.strip():
                raise MeritInputError(f"{path}:{num}: expected '<utt-id> <value>'")
            yield num, key, value.strip()


def label_counts(path: str, emotion_list: Sequence[str]) -> List[int]:
    """Count each class of ``emotion_list`` in an ``emotion`` file; unknown labels
    are an error naming the line."""
    counts = collections.Counter()
    for num, key, label in read_scp(path):
        if label not in emotion_list:
            raise MeritInputError(
                f"{path}:{num}: utterance '{key}' has emotion label '{label}', which "
                f"is not in the emotion list {list(emotion_list)} (--emotion_list)"
            )
        counts[label] += 1
    return [counts[c] for c in emotion_list]


def check_sound_scp(path: str, fs: int) -> int:
    """Every file of a sound scp exists and is recorded at ``fs``; returns count."""
    n = 0
    for num, key, value in read_scp(path):
        if value.endswith("|"):
            continue  # a command pipe: checked when it is read
        try:
            info = soundfile.info(value)
        except Exception as e:
            raise MeritInputError(
                f"{path}:{num}: cannot read audio '{value}' of utterance '{key}': {e}"
            ) from None
        if info.samplerate != fs:
            raise MeritInputError(
                f"{path}:{num}: '{value}' is sampled at {info.samplerate} Hz, but the "
                f"model expects {fs} Hz (--fs); resample the data first"
            )
        n += 1
    return n


def check_data(args: argparse.Namespace, needed: Dict[str, str]) -> None:
    """Check the train and valid data lists of a MERIT training run.

    Args:
        args: Training arguments (``*_data_path_and_name_and_type``, ``fs``,
            ``emotion_list``).
        needed: Data name -> why it is needed (e.g. "speech_ref1" -> "the SE head
            is on"); each must be in both lists.
    """
    for split in ("train", "valid"):
        entries = getattr(args, f"{split}_data_path_and_name_and_type", None) or []
        names = {name: (path, kind) for path, name, kind in entries}
        for name, why in needed.items():
            if name not in names:
                raise MeritInputError(
                    f"{why}, but the {split} data has no '{name}': add "
                    f"--{split}_data_path_and_name_and_type <file>,{name},<type> "
                    f"(has: {sorted(names)})"
                )
        for name, (path, kind) in names.items():
            if not Path(path).exists():
                raise MeritInputError(f"{split} data '{name}': no such file {path}")
            if kind == "sound":
                n = check_sound_scp(path, args.fs)
                logger.info(f"{path}: {n} files at {args.fs} Hz")
            elif name == "emotion" and args.emotion_list is not None:
                label_counts(path, args.emotion_list)
