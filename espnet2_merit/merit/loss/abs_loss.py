"""Interface of SER losses."""

from abc import ABC, abstractmethod

import torch


class AbsSERLoss(torch.nn.Module, ABC):
    """Loss between SER head outputs and targets.

    ``target`` is the data key it expects ("emotion" for class indices, "emotion_attr"
    for attribute values); the task checks it matches the head's.
    """

    target: str = "emotion"

    @abstractmethod
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, C) predictions and targets ((B,) long or (B, C) float) -> scalar."""
