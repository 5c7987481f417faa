"""Turns loaded data (waveforms, label strings) into model inputs."""

from typing import Dict, List, Optional, Union

import numpy as np
from espnet2.train.preprocessor import AbsPreprocessor
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError


class MeritPreprocessor(AbsPreprocessor):
    """Checks waveforms, crops long training utterances, maps labels to numbers.

    - ``speech`` / ``speech_ref1``: mono float32 of equal length; in training,
      utterances longer than ``max_speech_sec`` are cropped at a random offset,
      the same for both (the paper crops to 12 s).
    - ``emotion``: class name -> index in ``emotion_list``.
    - ``emotion_attr``: "A V D" -> float32 vector of ``num_attributes`` values.
    """

    @typechecked
    def __init__(
        self,
        train: bool,
        emotion_list: Optional[List[str]] = None,
        num_attributes: int = 3,
        fs: int = 16000,
        max_speech_sec: Optional[float] = None,
    ):
        super().__init__(train)
        self.emotion_list = emotion_list
        self.label_to_id = {c: i for i, c in enumerate(emotion_list or [])}
        self.num_attributes = num_attributes
        self.max_samples = None if max_speech_sec is None else int(max_speech_sec * fs)

    def _wave(self, uid: str, name: str, wav: np.ndarray) -> np.ndarray:
        if wav.ndim != 1:
            raise MeritInputError(
                f"utterance '{uid}': '{name}' has shape {wav.shape}; MERIT expects "
                "mono audio (downmix during data preparation)"
            )
        return wav.astype(np.float32)

    def __call__(
        self, uid: str, data: Dict[str, Union[str, np.ndarray]]
    ) -> Dict[str, np.ndarray]:
        out = dict(data)
        for name in ("speech", "speech_ref1"):
            if name in out:
                out[name] = self._wave(uid, name, out[name])
        if "speech_ref1" in out and len(out["speech_ref1"]) != len(out["speech"]):
            raise MeritInputError(
                f"utterance '{uid}': speech has {len(out['speech'])} samples but "
                f"speech_ref1 has {len(out['speech_ref1'])}"
            )
        if self.train and self.max_samples and len(out["speech"]) > self.max_samples:
            start = np.random.randint(len(out["speech"]) - self.max_samples + 1)
            for name in ("speech", "speech_ref1"):
                if name in out:
                    out[name] = out[name][start : start + self.max_samples]
        if "emotion" in out:
            out["emotion"] = np.array([self.label_id(uid, out["emotion"])])
        if "emotion_attr" in out:
            out["emotion_attr"] = self.attributes(uid, out["emotion_attr"])
        return out

    def label_id(self, uid: str, label: str) -> int:
        """Index of ``label`` in the emotion list, or a clear error."""
        label = label.strip()
        if label not in self.label_to_id:
            raise MeritInputError(
                f"utterance '{uid}': emotion label '{label}' is not in the emotion "
                f"list {self.emotion_list} (--emotion_list)"
            )
        return self.label_to_id[label]

    def attributes(self, uid: str, text: str) -> np.ndarray:
        """Parse "A V D" into a float32 vector, or a clear error."""
        try:
            values = np.array([float(v) for v in text.split()], dtype=np.float32)
        except ValueError:
            values = np.zeros(0, dtype=np.float32)
        if len(values) != self.num_attributes:
            raise MeritInputError(
                f"utterance '{uid}': emotion_attr '{text}' should be "
                f"{self.num_attributes} numbers separated by spaces"
            )
        return values
