"""Interface of task losses."""

from abc import ABC, abstractmethod
from typing import Any

import torch


class AbsLoss(torch.nn.Module, ABC):
    """A task's loss: the head's predictions against its reference.

    ``kind`` is the target kind the loss is for ("label": (B, C) logits and (B,)
    class indices; "vector": (B, A) predictions and values; "waveform": the SE
    head's ``SEOutput`` of the enhanced and of the clean speech); the task checks
    it matches the head's. To add a loss, subclass this in one file, set ``kind``,
    take ``target`` (the head's ``Target``: class list, value names) as the first
    constructor argument, and register the class in ``tasks/merit.py``'s
    ``loss_choices``. Set ``needs_wav`` if a waveform loss compares waveforms (the
    SE head then synthesises them in training too).
    """

    kind: str = ""
    needs_wav: bool = False

    @abstractmethod
    def forward(self, pred: Any, ref: Any) -> torch.Tensor:
        """Scalar loss, averaged over valid data only (never over padding)."""
