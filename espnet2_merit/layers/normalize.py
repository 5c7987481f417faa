"""Waveform normalisation with padding masks linear in the input length.

ESPnet's ``GlobalMVN`` / ``UtteranceMVN`` build their padding mask with the
ONNX-traceable ``make_pad_mask``, which materialises an (L+1) x (L+1) matrix: for
raw waveforms (L = 192,000 samples for a 12 s crop) that is 37 GB. These subclasses
keep ESPnet's options and statistics files and replace only the forward pass.

Both are affine maps x -> (x - shift) / scale, with one (shift, scale) per
utterance (``affine``), so the model can map a clean reference into the same
domain as its noisy input, and enhanced speech back (``model_conf.head_domain``).
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


def _lengths(x: torch.Tensor, ilens: Optional[torch.Tensor]) -> torch.Tensor:
    if ilens is None:
        return torch.full((x.size(0),), x.size(1), device=x.device)
    return ilens


class _AffineNormalize:
    """forward(x) = (x - shift) / scale on valid samples, zero padding."""

    def affine(
        self, x: torch.Tensor, ilens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, L, D) inputs -> (shift, scale), each broadcastable to (B, 1, D)."""
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, ilens: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, L, D) -> (B, L, D), lengths unchanged."""
        ilens = _lengths(x, ilens)
        shift, scale = self.affine(x, ilens)
        return (x - shift) / scale * _valid(x, ilens), ilens


class WaveGlobalMVN(_AffineNormalize, GlobalMVN):
    """``global_mvn``: (x - mean) / std with training-set statistics (the
    ``--collect_stats`` file); padding stays zero."""

    def affine(self, x, ilens):
        ones = x.new_ones(1, 1, x.size(-1))
        shift = self.mean.to(x.device, x.dtype) if self.norm_means else 0 * ones
        scale = self.std.to(x.device, x.dtype) if self.norm_vars else ones
        return shift.expand_as(ones), scale.expand_as(ones)


class WaveUtteranceMVN(_AffineNormalize, UtteranceMVN):
    """``utterance_mvn``: per-utterance mean (and variance) over the valid samples
    only; padding stays zero."""

    def affine(self, x, ilens):
        valid = _valid(x, ilens).to(x.dtype)
        count = ilens.to(x.device, x.dtype).view(-1, *[1] * (x.dim() - 1))
        x = x * valid
        shift = x.sum(1, keepdim=True) / count
        if not self.norm_means:
            shift = torch.zeros_like(shift)
        scale = torch.ones_like(shift)
        if self.norm_vars:
            var = ((x - shift) * valid).pow(2).sum(1, keepdim=True) / count
            scale = var.sqrt().clamp(min=self.eps)
        return shift, scale
