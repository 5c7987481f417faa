"""Checks a training run's data before the first batch, with messages that name
the file, the line and what was expected."""

import argparse
import collections
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import soundfile

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import NO_TARGET, LabelTarget, Target
from espnet2_merit.utils.datadir import iter_kaldi

logger = logging.getLogger(__name__)


def label_counts(path: str, target: LabelTarget) -> List[int]:
    """Count each class of ``target`` in a label file (``-``, no label, is not
    counted); unknown labels are an error naming the line."""
    counts = collections.Counter()
    for num, key, label in iter_kaldi(path):
        if label.strip() == NO_TARGET:
            continue
        target.label_id(key, label, f"{path}:{num}")
        counts[label.strip()] += 1
    return [counts[c] for c in target.classes]


def check_sound_scp(path: str, fs: int) -> Dict[str, int]:
    """Every file of a sound scp exists, is mono and recorded at ``fs``; returns
    utterance -> number of samples (None for command pipes, checked when read)."""
    frames = {}
    for num, key, value in iter_kaldi(path):
        if value.endswith("|"):
            frames[key] = None
            continue
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
        if info.channels != 1:
            raise MeritInputError(
                f"{path}:{num}: '{value}' has {info.channels} channels; MERIT expects "
                "mono audio (downmix during data preparation)"
            )
        frames[key] = info.frames
    return frames


def _check_text(path: str, target: Optional[Target]) -> List[str]:
    """Keys of a text data file; each value parsed by its target."""
    keys = []
    for num, key, value in iter_kaldi(path):
        if isinstance(target, LabelTarget) and value.strip() != NO_TARGET:
            target.label_id(key, value, f"{path}:{num}")
        elif target is not None and not isinstance(target, LabelTarget):
            try:
                target.parse(key, value)
            except MeritInputError as e:
                raise MeritInputError(f"{path}:{num}: {e}") from None
        keys.append(key)
    return keys


def check_data(
    args: argparse.Namespace,
    needed: Dict[str, Tuple[str, Optional[Target]]],
    train_generated: Sequence[str] = (),
    generated: Sequence[str] = (),
) -> None:
    """Check the train and valid data lists of a MERIT training run.

    Every needed data name is in both lists; every file exists and lists the
    same utterances as ``speech`` (no id missing or extra, none repeated); audio
    is readable, mono and at ``fs``; a waveform target has as many samples as the
    noisy speech; labels and values parse.

    Args:
        args: Training arguments (``*_data_path_and_name_and_type``, ``fs``).
        needed: Data name -> (why it is needed, its Target or None), e.g.
            "speech_ref1" -> ("task 'se' trains on it", WaveformTarget(...)).
        train_generated: Names the preprocessor makes for training data
            (``--dynamic_mixing``: the SE reference): the train lists need not
            have them. With any, the training ``speech`` must be clean speech,
            not a stage-2 mixture list (a ``wav.scp`` beside an ``utt2snr``).
        generated: Names the preprocessor makes for both lists
            (``--augmentation``: ``aug_type``, ``speech_unaugmented``).
    """
    for split in ("train", "valid"):
        entries = getattr(args, f"{split}_data_path_and_name_and_type", None) or []
        names = {name: (path, kind) for path, name, kind in entries}
        mixed = set(train_generated) if split == "train" else set()
        if mixed and "speech" in names:
            speech = Path(names["speech"][0])
            if speech.name == "wav.scp" and (speech.parent / "utt2snr").exists():
                raise MeritInputError(
                    f"dynamic_mixing adds noise to the training speech, but {speech} "
                    f"lists stage-2 mixtures ({speech.parent / 'utt2snr'}): list the "
                    f"clean speech ({speech.parent / 'spk1.scp'}) as 'speech'"
                )
        for name, (why, _) in needed.items():
            if name not in names and name not in {*mixed, *generated}:
                raise MeritInputError(
                    f"{why}, but the {split} data has no '{name}': add "
                    f"--{split}_data_path_and_name_and_type <file>,{name},<type> "
                    f"(has: {sorted(names)})"
                )
        keys: Dict[str, List[str]] = {}
        samples: Dict[str, Dict[str, int]] = {}
        for name, (path, kind) in names.items():
            if not Path(path).exists():
                raise MeritInputError(f"{split} data '{name}': no such file {path}")
            if kind == "sound":
                samples[name] = check_sound_scp(path, args.fs)
                keys[name] = list(samples[name])
                logger.info(f"{path}: {len(keys[name])} files at {args.fs} Hz")
            else:
                keys[name] = _check_text(path, needed.get(name, (None, None))[1])
        _same_utterances(names, keys)
        _same_lengths(names, samples, needed)


def _same_utterances(names, keys: Dict[str, List[str]]) -> None:
    if "speech" not in keys:
        return
    speech = set(keys["speech"])
    for name, ids in keys.items():
        missing = sorted(speech - set(ids))
        extra = sorted(set(ids) - speech)
        if missing:
            raise MeritInputError(
                f"{names[name][0]}: no entry for utterance '{missing[0]}' of "
                f"{names['speech'][0]} ({len(missing)} utterances missing)"
            )
        if extra:
            raise MeritInputError(
                f"{names[name][0]}: utterance '{extra[0]}' is not in "
                f"{names['speech'][0]} ({len(extra)} such utterances; they would be "
                "dropped)"
            )


def _same_lengths(names, samples: Dict[str, Dict[str, int]], needed) -> None:
    noisy = samples.get("speech", {})
    for name, lengths in samples.items():
        target = needed.get(name, (None, None))[1]
        if name == "speech" or target is None or target.kind != "waveform":
            continue
        for key, n in lengths.items():
            if n is not None and noisy.get(key) is not None and n != noisy[key]:
                raise MeritInputError(
                    f"{names[name][0]}: utterance '{key}' has {n} samples, but its "
                    f"noisy speech in {names['speech'][0]} has {noisy[key]}"
                )
