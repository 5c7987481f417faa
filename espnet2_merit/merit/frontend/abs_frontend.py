"""Interface of multi-layer frontends: waveform -> a stack of per-layer features."""

from abc import ABC, abstractmethod
from typing import Tuple

import torch


class AbsMultiLayerFrontend(torch.nn.Module, ABC):
    """Turns a waveform batch into all the layers a fusion module chooses from."""

    @abstractmethod
    def num_layers(self) -> int:
        """Number of layers L in the output stack."""

    @abstractmethod
    def output_size(self) -> int:
        """Feature size D of every layer."""

    @abstractmethod
    def frame_shift(self) -> int:
        """Samples between two output frames (320 for WavLM at 16 kHz)."""

    def min_samples(self) -> int:
        """Shortest input giving one full output frame (its receptive field)."""
        return self.frame_shift()

    @abstractmethod
    def forward(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Compute the layer stack.

        Args:
            speech: Waveforms (B, N).
            speech_lengths: Valid samples per waveform (B,).

        Returns:
            feats: (B, T, L, D); frames past ``feats_lengths`` are padding.
            feats_lengths: (B,).
        """
