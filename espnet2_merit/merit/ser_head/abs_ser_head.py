"""Interface of speech-emotion-recognition heads."""

from abc import ABC, abstractmethod

import torch


class AbsSERHead(torch.nn.Module, ABC):
    """Pools the SER task's fused features into utterance-level predictions.

    ``target`` names the data key the head is trained on: "emotion" (class index,
    outputs are logits) or "emotion_attr" (attribute values, outputs are values).
    """

    target: str = "emotion"

    @abstractmethod
    def output_size(self) -> int:
        """Number of outputs (classes or attributes)."""

    @abstractmethod
    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, D) features with (B,) lengths -> (B, output_size)."""
