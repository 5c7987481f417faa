"""Class-weighted cross entropy and focal loss for class labels, hard or soft."""

from typing import List, Optional

import torch
import torch.nn.functional as F
from typeguard import typechecked

from espnet2_merit.merit.heads.targets import LabelTarget
from espnet2_merit.merit.loss.abs_loss import AbsLoss


def _as_distribution(ref: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B,) class indices or a (B, C) distribution -> (B, C) distribution."""
    if ref.dim() == 1:
        return F.one_hot(ref, num_classes).float()
    return ref.float()


class WeightedCrossEntropy(AbsLoss):
    """Cross entropy with per-class weights, against class indices or a target
    distribution (soft labels).

    loss = sum_i sum_c w_c q_ic (-log p_ic) / sum_i sum_c w_c q_ic, which for
    one-hot q is PyTorch's weighted mean cross entropy.

    The task fills ``class_weights`` from the training labels when the config says
    ``class_weights: balanced`` (weight_c = N / (C * count_c), as in the paper) and
    stores the numbers in config.yaml, so inference rebuilds the same loss.
    """

    kind = "label"

    @typechecked
    def __init__(
        self, target: LabelTarget, class_weights: Optional[List[float]] = None
    ):
        super().__init__()
        num_classes = len(target.classes)
        if class_weights is not None and len(class_weights) != num_classes:
            raise ValueError(
                f"loss_conf.class_weights has {len(class_weights)} values for "
                f"{num_classes} classes"
            )
        weights = torch.ones(num_classes) if class_weights is None else class_weights
        self.register_buffer("class_weights", torch.as_tensor(weights).float())

    def per_class(self, logp: torch.Tensor) -> torch.Tensor:
        """(B, C) log probabilities -> (B, C) loss of each class's share."""
        return -logp

    def forward(self, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """(B, C) logits against (B,) class indices or a (B, C) distribution."""
        q = _as_distribution(ref, pred.size(-1)) * self.class_weights
        return (q * self.per_class(F.log_softmax(pred.float(), -1))).sum() / q.sum()


class FocalLoss(WeightedCrossEntropy):
    """alpha * (1 - p_c)^gamma * weighted CE of each class (Lin et al.),
    weight-normalised mean; for one-hot targets the usual focal loss."""

    @typechecked
    def __init__(
        self,
        target: LabelTarget,
        class_weights: Optional[List[float]] = None,
        alpha: float = 1.0,
        gamma: float = 2.0,
    ):
        super().__init__(target, class_weights)
        self.alpha, self.gamma = alpha, gamma

    def per_class(self, logp: torch.Tensor) -> torch.Tensor:
        return self.alpha * (1 - logp.exp()).pow(self.gamma) * -logp
