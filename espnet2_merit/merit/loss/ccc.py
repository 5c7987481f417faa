"""1 - concordance correlation coefficient for attribute regression."""

import torch
from typeguard import typechecked

from espnet2_merit.merit.loss.abs_loss import AbsSERLoss


def concordance_cc(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CCC per column of (B, C) tensors -> (C,)."""
    pm, tm = pred.mean(0), target.mean(0)
    pv, tv = pred.var(0, unbiased=False), target.var(0, unbiased=False)
    cov = ((pred - pm) * (target - tm)).mean(0)
    return 2 * cov / (pv + tv + (pm - tm).pow(2) + 1e-8)


class CCCLoss(AbsSERLoss):
    """Mean over attributes of 1 - CCC, computed over the batch."""

    target = "emotion_attr"

    @typechecked
    def __init__(self, num_classes: int):
        super().__init__()
        self.num_attributes = num_classes

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (1 - concordance_cc(pred.float(), target.float())).mean()
