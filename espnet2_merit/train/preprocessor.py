"""Turns loaded data (waveforms, label strings) into model inputs."""

from typing import Dict, List, Optional, Union

import numpy as np
from espnet2.train.preprocessor import AbsPreprocessor
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import Target, mono


class MeritPreprocessor(AbsPreprocessor):
    """Checks the noisy waveform, parses each task's target, crops long training
    utterances.

    - ``speech``: mono float32 with finite samples;
    - each target through its ``Target.parse`` (labels -> class index, "a v d" ->
      float32 vector, waveforms checked like speech);
    - waveform targets must have the noisy speech's length; in training,
      utterances longer than ``max_speech_sec`` are cropped at a random offset,
      the same for the speech and its waveform targets (the paper crops to 12 s);
    - other data (a file the recipe passes that no task uses) is left out of the
      batch.
    """

    @typechecked
    def __init__(
        self,
        train: bool,
        targets: List[Target],
        fs: int = 16000,
        max_speech_sec: Optional[float] = None,
    ):
        super().__init__(train)
        self.targets = {t.name: t for t in targets}
        self.max_samples = None if max_speech_sec is None else int(max_speech_sec * fs)

    def __call__(
        self, uid: str, data: Dict[str, Union[str, np.ndarray]]
    ) -> Dict[str, np.ndarray]:
        out = {"speech": mono(uid, "speech", data["speech"])}
        waves = ["speech"]
        for name, target in self.targets.items():
            if name not in data:
                continue  # the model says which batch lacks a target it needs
            out[name] = target.parse(uid, data[name])
            if target.kind == "waveform":
                if len(out[name]) != len(out["speech"]):
                    raise MeritInputError(
                        f"utterance '{uid}': speech has {len(out['speech'])} samples "
                        f"but {name} has {len(out[name])}"
                    )
                waves.append(name)
        if self.train and self.max_samples and len(out["speech"]) > self.max_samples:
            start = np.random.randint(len(out["speech"]) - self.max_samples + 1)
            for name in waves:
                out[name] = out[name][start : start + self.max_samples]
        return out
