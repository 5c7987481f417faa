"""Waveform normalisation with padding masks linear in the input length.

ESPnet's ``GlobalMVN`` / ``UtteranceMVN`` build their padding mask with the
ONNX-traceable ``make_pad_mask``, which materialises an (L+1) x (L+1) matrix: for
raw waveforms (L = 192,000 samples for a 12 s crop) that is 37 GB. These subclasses
keep ESPnet's options and statistics files and replace only the forward pass.
"""

from typing import Optional, Tuple

import torch
from espnet2.layers.global_mvn import GlobalMVN
from espnet2.layers.utterance_mvn import UtteranceMVN

from espnet2_merit.utils.masks import valid_mask


def _valid(x: torch.Tensor, ilens: torch.Tensor) -> torch.Tensor:
    """(B, L, ...) -> (B, L, 1, ...) True on valid samples."""
    mask = valid_mask(ilens.to(x.device), x.size(1))
    return mask.view(*mask.shape, *([1] * (x.dim() - 2)))


class WaveGlobalMVN(GlobalMVN):
    """``global_mvn``: (x - mean) / std with training-set statistics (the
    ``--collect_stats`` file); padding stays zero."""

    def forward(
        self, x: torch.Tensor, ilens: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, L, D) -> (B, L, D), lengths unchanged."""
        if ilens is None:
            ilens = torch.full((x.size(0),), x.size(1), device=x.device)
        mean = self.mean.to(x.device, x.dtype)
        std = self.std.to(x.device, x.dtype)
        if self.norm_means:
            x = x - mean
        if self.norm_vars:
            x = x / std
        return x * _valid(x, ilens), ilens


class WaveUtteranceMVN(UtteranceMVN):
    """``utterance_mvn``: per-utterance mean (and variance) over the valid samples
    only; padding stays zero."""

    def forward(
        self, x: torch.Tensor, ilens: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, L, D) -> (B, L, D), lengths unchanged."""
        if ilens is None:
            ilens = torch.full((x.size(0),), x.size(1), device=x.device)
        valid = _valid(x, ilens).to(x.dtype)
        count = ilens.to(x.device, x.dtype).view(-1, *[1] * (x.dim() - 1))
        x = x * valid
        if self.norm_means:
            x = (x - x.sum(1, keepdim=True) / count) * valid
        if self.norm_vars:
            std = (x.pow(2).sum(1, keepdim=True) / count).sqrt()
            x = x / std.clamp(min=self.eps)
        return x, ilens
