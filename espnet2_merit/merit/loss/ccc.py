"""1 - concordance correlation coefficient for attribute regression."""

import torch
from typeguard import typechecked

from espnet2_merit.merit.heads.targets import VectorTarget
from espnet2_merit.merit.loss.abs_loss import AbsLoss
from espnet2_merit.scoring.ser import concordance


def concordance_cc(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CCC per column of (B, A) tensors -> (A,)."""
    pm, tm = pred.mean(0), target.mean(0)
    pv, tv = pred.var(0, unbiased=False), target.var(0, unbiased=False)
    cov = ((pred - pm) * (target - tm)).mean(0)
    return concordance(pm, tm, pv, tv, cov, eps=1e-8)


class CCCLoss(AbsLoss):
    """Mean over attributes of 1 - CCC, computed over the batch."""

    kind = "vector"

    @typechecked
    def __init__(self, target: VectorTarget):
        super().__init__()
        self.num_attributes = len(target.names)

    def forward(self, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return (1 - concordance_cc(pred.float(), ref.float())).mean()
