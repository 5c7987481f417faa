"""Class-weighted cross entropy and focal loss for class labels."""

from typing import List, Optional

import torch
import torch.nn.functional as F
from typeguard import typechecked

from espnet2_merit.merit.heads.targets import LabelTarget
from espnet2_merit.merit.loss.abs_loss import AbsLoss


class WeightedCrossEntropy(AbsLoss):
    """Cross entropy with per-class weights.

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

    def forward(self, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(pred.float(), ref, weight=self.class_weights)


class FocalLoss(WeightedCrossEntropy):
    """alpha * (1 - p_t)^gamma * weighted CE (Lin et al.), weight-normalised mean."""

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

    def forward(self, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(pred.float(), -1).gather(1, ref[:, None]).squeeze(1)
        weight = self.class_weights[ref]
        focal = self.alpha * (1 - logp.exp()).pow(self.gamma) * -logp
        return (weight * focal).sum() / weight.sum()
