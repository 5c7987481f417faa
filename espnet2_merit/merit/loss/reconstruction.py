"""L1 distance of reconstructed spectral features, over valid frames only."""

import torch
from typeguard import typechecked

from espnet2_merit.merit.heads.targets import SourceTarget
from espnet2_merit.merit.loss.abs_loss import AbsLoss
from espnet2_merit.utils.masks import valid_mask


class SpectralL1(AbsLoss):
    """Mean absolute difference of two (B, T, M) feature sequences on the same
    frame grid (the reconstruction head aligns them), averaged over the valid
    frames and features of the batch: padding never enters."""

    kind = "source"

    @typechecked
    def __init__(self, target: SourceTarget):
        super().__init__()

    def forward(self, pred, ref) -> torch.Tensor:
        """``pred`` and ``ref``: ``SpecOutput`` (spec (B, T, M), lengths (B,))
        with equal lengths."""
        if not torch.equal(pred.lengths, ref.lengths):
            raise ValueError("reconstruction and reference frame counts differ")
        mask = valid_mask(pred.lengths, pred.spec.size(1))[..., None]
        diff = (pred.spec.float() - ref.spec.float()).abs() * mask
        return diff.sum() / (mask.sum() * pred.spec.size(-1)).clamp(min=1)
