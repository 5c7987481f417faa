"""Turns loaded data (waveforms, label strings) into model inputs."""

import zlib
from typing import Callable, Dict, List, Optional, Union

import numpy as np
from espnet2.train.preprocessor import AbsPreprocessor
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import Target, mono
from espnet2_merit.simulation.augmentation import LABEL, SOURCE, Augmenter
from espnet2_merit.simulation.dynamic_mixing import DynamicMixer

CROPS = ("random", "first")


class MeritPreprocessor(AbsPreprocessor):
    """Checks the noisy waveform, parses each task's target, crops long utterances.

    - ``speech``: mono float32 with finite samples;
    - each target through its ``Target.parse`` (labels -> class index, "a v d" ->
      float32 vector, waveforms checked like speech);
    - waveform targets must have the noisy speech's length; utterances longer
      than ``max_speech_sec`` are cropped to it, the speech and its waveform
      targets (``speech_ref1``) with the same window: in training always, in
      validation with ``crop_valid``;
    - other data (a file the recipe passes that no task uses) is left out of the
      batch.

    With a ``mixer`` (``--dynamic_mixing``, training only) ``speech`` is the
    clean speech: it is cropped first (the window drawn per (seed, epoch,
    utterance) by the mixer), then noise (and reverberation) is mixed into the
    window, which becomes ``speech``, and the mixer's SE reference (dry or early
    speech) becomes every waveform target (``speech_ref1``), loaded or not. The
    epoch comes from :meth:`set_epoch` (``EpochIterFactory``).

    With an ``augmenter`` (``--augmentation``) each training utterance is then
    augmented (after cropping and mixing; speed and pitch changes reach the
    waveform targets too), and the tasks that ask for them get ``aug_type`` (the
    type drawn; ``none`` in validation, which is not augmented) and
    ``speech_unaugmented`` (the input before augmentation)
    (``espnet2_merit.simulation.augmentation``).

    With a ``text_tokenizer`` (a config with a ``text_frontend``) the
    transcript ``text`` becomes (S,) int64 token ids (the collate function pads
    them and adds ``text_lengths``); an empty transcript is an error naming the
    utterance. Without one, ``text`` is left out like other unused data.

    Inference never comes here: test utterances are scored whole (the authors'
    release crops test utterances to their first 12 s too).

    Args:
        train: Training data (else validation, or ``--collect_stats``).
        targets: The tasks' targets to parse.
        fs: Sampling rate, for ``max_speech_sec``.
        max_speech_sec: Crop longer utterances to this length; None: never crop.
        crop: Which window: ``random`` (a random offset in training; in
            validation one fixed per utterance id) or ``first`` (the first
            ``max_speech_sec`` seconds, as the authors' release crops).
        crop_valid: Crop validation utterances too (the release does).
        mixer: Dynamic mixing of training utterances (only with ``train``).
        augmenter: Augmentation of training utterances.
        text_tokenizer: Transcript -> (S,) int64 token ids (the text frontend's).
    """

    @typechecked
    def __init__(
        self,
        train: bool,
        targets: List[Target],
        fs: int = 16000,
        max_speech_sec: Optional[float] = None,
        crop: str = "random",
        crop_valid: bool = False,
        mixer: Optional[DynamicMixer] = None,
        augmenter: Optional[Augmenter] = None,
        text_tokenizer: Optional[Callable[[str], np.ndarray]] = None,
    ):
        super().__init__(train)
        if mixer is not None and not train:
            raise MeritInputError(
                "dynamic_mixing applies to training data only (dev and test read "
                "the stage-2 mixtures)"
            )
        if crop not in CROPS:
            raise MeritInputError(f"crop: {crop!r} is not one of {list(CROPS)}")
        if max_speech_sec is not None and not max_speech_sec > 0:
            raise MeritInputError(
                f"max_speech_sec: expected a positive number of seconds or null, "
                f"not {max_speech_sec}"
            )
        self.targets = {t.name: t for t in targets}
        self.max_samples = None if max_speech_sec is None else int(max_speech_sec * fs)
        self.crop = crop
        self.cropping = self.max_samples is not None and (train or crop_valid)
        self.mixer, self.augmenter = mixer, augmenter
        self.text_tokenizer = text_tokenizer
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        """The epoch of the utterances loaded next (before the DataLoader forks
        its workers; they copy it); preloads the mixer's noise cache."""
        self.epoch = epoch
        if self.mixer is not None:
            self.mixer.preload()

    def __call__(
        self, uid: str, data: Dict[str, Union[str, np.ndarray]]
    ) -> Dict[str, np.ndarray]:
        out = {"speech": mono(uid, "speech", data["speech"])}
        waves = ["speech"]
        for name, target in self.targets.items():
            if name not in data or name in (LABEL, SOURCE):
                continue  # the model says which batch lacks a target it needs
            out[name] = target.parse(uid, data[name])
            if target.kind == "waveform":
                if len(out[name]) != len(out["speech"]):
                    raise MeritInputError(
                        f"utterance '{uid}': speech has {len(out['speech'])} samples "
                        f"but {name} has {len(out[name])}"
                    )
                waves.append(name)
        if self.cropping and len(out["speech"]) > self.max_samples:
            start = self._start(uid, len(out["speech"]) - self.max_samples)
            for name in waves:
                out[name] = out[name][start : start + self.max_samples]
        if self.mixer is not None:
            out["speech"], reference = self.mixer(out["speech"], uid, self.epoch)
            for name, target in self.targets.items():
                if target.kind == "waveform":
                    out[name] = reference
        if self.augmenter is not None:
            self._augment(uid, out)
        if self.text_tokenizer is not None and "text" in data:
            if not str(data["text"]).strip():
                raise MeritInputError(
                    f"utterance '{uid}': its transcript (data 'text') is empty"
                )
            out["text"] = self.text_tokenizer(str(data["text"]))
        return out

    def _augment(self, uid: str, out: Dict[str, np.ndarray]) -> None:
        """Augment ``out`` in place (training only), adding the generated data
        the tasks ask for."""
        source, kind = out["speech"], "none"
        if self.train:
            refs = {
                n: out[n]
                for n, t in self.targets.items()
                if t.kind == "waveform" and n in out
            }
            out["speech"], refs, kind = self.augmenter(
                out["speech"], refs, uid, self.epoch
            )
            out.update(refs)
        if LABEL in self.targets:
            out[LABEL] = self.targets[LABEL].parse(uid, kind)
        if SOURCE in self.targets:
            out[SOURCE] = source

    def _start(self, uid: str, spare: int) -> int:
        """The crop's first sample, of ``spare + 1`` possible."""
        if self.crop == "first":
            return 0
        if self.mixer is not None:
            return self.mixer.crop_start(uid, self.epoch, spare)
        if self.train:
            return np.random.randint(spare + 1)
        # Validation: the same window in every epoch.
        return int(np.random.default_rng(zlib.crc32(uid.encode())).integers(spare + 1))
