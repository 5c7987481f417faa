"""What a task learns from: one data name of a data directory, read into the
arrays a batch carries, and the same file format written back for predictions.

Every target kind has one text format, used both ways: ``parse`` turns a loaded
value (a label, "a v d", a waveform) into the array the collate function pads,
``render`` turns a prediction into the lines of the same file, which scoring
compares with the reference file of the same name. ``kind`` says which metrics
score it (``espnet2_merit.scoring.registry``).

An utterance may lack a label or values (semi-supervised training: an unlabelled
pool beside the labelled set): its line says ``-`` (``NO_TARGET``), and
``present`` tells the model which utterances of a batch have the target, so a
task's loss and statistics see only those.
"""

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Dict, Sequence, Tuple

import numpy as np

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.datadir import data_file

# The value of an utterance without this target (an unlabelled utterance).
NO_TARGET = "-"
# Data the training preprocessor makes (``--augmentation``), never read from a
# data directory: the augmentation type drawn and the input before it. Tasks on
# them train only; inference gives no output for them.
AUG_LABEL, AUG_SOURCE = "aug_type", "speech_unaugmented"
GENERATED = (AUG_LABEL, AUG_SOURCE)

# torch is imported where a batch is read (``from_batch``): the recipe's label
# checks (stage 5) and the decode bookkeeping use targets without it.
if TYPE_CHECKING:
    import torch


class Target(ABC):
    """One data name a task trains on.

    Args:
        name: The data name (batch key), e.g. ``emotion``.
    """

    kind: str = ""  # "label" | "vector" | "waveform"

    def __init__(self, name: str):
        self.name = name

    @property
    def file_name(self) -> str:
        """Its file in a data directory (``emotion``, ``spk1.scp``, ...)."""
        return data_file(self.name)[0]

    @property
    def file_type(self) -> str:
        """ESPnet's loader type for that file ("text" or "sound")."""
        return data_file(self.name)[1]

    @abstractmethod
    def parse(self, uid: str, value) -> np.ndarray:
        """A loaded value of utterance ``uid`` -> the array a batch carries."""

    def from_batch(
        self, batch: Dict[str, "torch.Tensor"]
    ) -> Tuple["torch.Tensor", "torch.Tensor"]:
        """The padded (B, ...) tensor of this target and its (B,) lengths."""
        import torch

        if batch.get(self.name) is None and self.name in GENERATED:
            raise MeritInputError(
                f"a task trains on '{self.name}' but the batch has none: the "
                "training data loader makes it with --augmentation"
            )
        if batch.get(self.name) is None:
            raise MeritInputError(
                f"a task trains on '{self.name}' but the batch has no '{self.name}' "
                f"(add <dir>/{self.file_name},{self.name},{self.file_type} to the "
                "data options)"
            )
        value = batch[self.name]
        lengths = batch.get(f"{self.name}_lengths")
        if lengths is None:
            lengths = torch.full((value.size(0),), value.size(1), dtype=torch.long)
        return value, lengths

    def present(self, batch: Dict[str, "torch.Tensor"]) -> "torch.Tensor":
        """(B,) bool: which utterances of the batch have this target (default:
        all; label and vector targets may be ``NO_TARGET``)."""
        import torch

        return torch.ones(self.from_batch(batch)[0].size(0), dtype=torch.bool)

    def describe(self) -> Dict:
        """JSON-ready description (the inference manifest; scoring reads it)."""
        return {"name": self.name, "kind": self.kind, "file": self.file_name}


class LabelTarget(Target):
    """A class name per utterance (``emotion``, ``gender``, ...), stored as its
    index in ``classes``; a label outside the list is an error, never class 0,
    and ``-`` (no label) is stored as -1.

    Args:
        name: The data name.
        classes: Class names in output order.
        source: Where the class list came from, for messages (e.g.
            "--emotion_list").
    """

    kind = "label"

    def __init__(self, name: str, classes: Sequence[str], source: str = "classes"):
        super().__init__(name)
        classes = [str(c) for c in classes]
        if not classes:
            raise MeritInputError(f"{source}: the class list of '{name}' is empty")
        repeated = sorted({c for c in classes if classes.count(c) > 1})
        if repeated:
            raise MeritInputError(f"{source}: classes {repeated} are repeated")
        if NO_TARGET in classes:
            raise MeritInputError(
                f"{source}: '{NO_TARGET}' cannot be a class (it marks an utterance "
                "without a label)"
            )
        self.classes, self.source = classes, source
        self.index = {c: i for i, c in enumerate(classes)}

    def label_id(self, uid: str, label: str, where: str = "") -> int:
        """Index of ``label``, or an error naming the utterance (and ``where``:
        a file and line)."""
        label = label.strip()
        if label not in self.index:
            place = f"{where}: " if where else ""
            raise MeritInputError(
                f"{place}utterance '{uid}': {self.name} label '{label}' is not in "
                f"the class list {self.classes} ({self.source})"
            )
        return self.index[label]

    def parse(self, uid: str, value) -> np.ndarray:
        if str(value).strip() == NO_TARGET:
            return np.array([-1])
        return np.array([self.label_id(uid, str(value))])

    def from_batch(self, batch):
        value, lengths = super().from_batch(batch)
        return value[:, 0], lengths

    def present(self, batch):
        return self.from_batch(batch)[0] >= 0

    def render(self, probs: np.ndarray) -> Dict[str, str]:
        """(C,) probabilities -> {file: the label, file_posteriors: the numbers}."""
        return {
            self.file_name: self.classes[int(np.argmax(probs))],
            f"{self.file_name}_posteriors": " ".join(f"{p:.6f}" for p in probs),
        }

    def describe(self) -> Dict:
        return {**super().describe(), "classes": list(self.classes)}


class VoteTarget(Target):
    """Annotators' votes per utterance (``emotion_votes``: ``A:1 H:3 N:1``, class
    and count, as stage 1 writes them from MSP-Podcast's labels_detailed.csv),
    read as the (C,) distribution of the votes over ``classes``: the soft label
    of a ``LabelTarget`` with the same classes.

    Votes for a class outside the list (O other, or U F D C with 4 classes) are
    not part of the distribution. An utterance with no vote for any listed class,
    or ``-``, reads as NaN: the head then trains on its hard label (one-hot).

    Args:
        name: The data name.
        classes: The class list of the label it softens.
    """

    kind = "votes"

    def __init__(self, name: str, classes: Sequence[str]):
        super().__init__(name)
        self.classes = [str(c) for c in classes]
        self.index = {c: i for i, c in enumerate(self.classes)}

    def parse(self, uid: str, value) -> np.ndarray:
        votes = np.zeros(len(self.classes), dtype=np.float32)
        text = str(value).strip()
        for token in [] if text == NO_TARGET else text.split():
            code, _, count = token.partition(":")
            try:
                n = float(count)
            except ValueError:
                n = -1.0
            if not code or not n >= 0 or not np.isfinite(n):
                raise MeritInputError(
                    f"utterance '{uid}': {self.name} '{value}': expected "
                    f"<class>:<count> pairs separated by spaces (e.g. 'A:1 N:4'), or "
                    f"'{NO_TARGET}'; '{token}' is not one"
                )
            if code in self.index:
                votes[self.index[code]] += n
        if votes.sum() <= 0:
            return np.full(len(self.classes), np.nan, dtype=np.float32)
        return votes / votes.sum()


class VectorTarget(Target):
    """A fixed number of values per utterance (``emotion_attr``: arousal valence
    dominance), written as numbers separated by spaces.

    Args:
        name: The data name.
        names: One name per value, in column order.
    """

    kind = "vector"

    def __init__(self, name: str, names: Sequence[str]):
        super().__init__(name)
        if not names:
            raise MeritInputError(f"'{name}': the list of value names is empty")
        self.names = [str(n) for n in names]

    def parse(self, uid: str, value) -> np.ndarray:
        if str(value).strip() == NO_TARGET:
            return np.full(len(self.names), np.nan, dtype=np.float32)
        try:
            values = np.array([float(v) for v in str(value).split()], np.float32)
        except ValueError:
            values = np.zeros(0, dtype=np.float32)
        if len(values) != len(self.names) or not np.isfinite(values).all():
            raise MeritInputError(
                f"utterance '{uid}': {self.name} '{value}' should be "
                f"{len(self.names)} finite numbers ({' '.join(self.names)}) "
                f"separated by spaces, or '{NO_TARGET}' (none)"
            )
        return values

    def present(self, batch):
        return self.from_batch(batch)[0].isfinite().all(-1)

    def render(self, values: np.ndarray) -> Dict[str, str]:
        return {self.file_name: " ".join(f"{v:.4f}" for v in values)}

    def describe(self) -> Dict:
        return {**super().describe(), "names": list(self.names)}


class WaveformTarget(Target):
    """A waveform aligned sample by sample with the noisy input (``speech_ref1``:
    the clean reference); cropped together with it in training."""

    kind = "waveform"

    def parse(self, uid: str, value) -> np.ndarray:
        return mono(uid, self.name, value)


class SourceTarget(Target):
    """A waveform whose features a head reconstructs (``speech_unaugmented``:
    the input before augmentation); its length may differ from the input's
    (speed changes), the head aligns the frames."""

    kind = "source"

    def parse(self, uid: str, value) -> np.ndarray:
        return mono(uid, self.name, value)


def mono(uid: str, name: str, wav: np.ndarray) -> np.ndarray:
    """A (N,) float32 waveform, or an error naming the utterance."""
    wav = np.asarray(wav)
    if wav.ndim != 1:
        raise MeritInputError(
            f"utterance '{uid}': '{name}' has shape {wav.shape}; MERIT expects "
            "mono audio (downmix during data preparation)"
        )
    if not np.isfinite(wav).all():
        raise MeritInputError(f"utterance '{uid}': '{name}' has NaN or Inf samples")
    return wav.astype(np.float32)
