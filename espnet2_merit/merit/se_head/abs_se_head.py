"""Interface of speech-enhancement heads."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class SEOutput:
    """An SE head's output.

    Attributes:
        wav: (B, N) enhanced waveforms, zero past ``wav_lengths`` (None when
            not asked for: training needs only ``spec``).
        wav_lengths: (B,), equal to the input lengths.
        spec: (B, T, F) enhanced spectral features the loss compares.
        spec_lengths: (B,) valid STFT frames.
    """

    wav: Optional[torch.Tensor]
    wav_lengths: torch.Tensor
    spec: torch.Tensor
    spec_lengths: torch.Tensor


class AbsSEHead(torch.nn.Module, ABC):
    """Enhances the noisy waveform, guided by the SE task's fused feature."""

    @abstractmethod
    def forward(
        self,
        noisy: torch.Tensor,
        noisy_lengths: torch.Tensor,
        feats: torch.Tensor,
        feats_lengths: torch.Tensor,
        with_wav: bool = True,
    ) -> SEOutput:
        """Enhance.

        Args:
            noisy: (B, N) noisy waveforms (not normalised).
            noisy_lengths: (B,).
            feats: (B, T', D) SE features from the fusion module.
            feats_lengths: (B,).
            with_wav: Also synthesise the enhanced waveform.
        """

    @abstractmethod
    def loss(
        self, output: SEOutput, clean: torch.Tensor, clean_lengths: torch.Tensor
    ) -> torch.Tensor:
        """Scalar loss of ``output`` against (B, N) clean waveforms."""
