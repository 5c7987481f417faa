"""Softmax-weighted sum of LayerNorm'd layers (the paper's naive-MTL baseline)."""

from typing import Optional, Sequence

import torch
from typeguard import typechecked

from espnet2_merit.merit.fusion.abs_fusion import AbsFusion, FusionOutput
from espnet2_merit.merit.fusion.layers import PerLayerNorm, SoftmaxLayerWeights
from espnet2_merit.utils.masks import valid_mask


class WeightedSumFusion(AbsFusion):
    """One weighting shared by all tasks, or one per task (``per_task``)."""

    @typechecked
    def __init__(
        self,
        input_layers: int,
        input_size: int,
        tasks: Sequence[str],
        per_task: bool = False,
    ):
        super().__init__(input_layers, input_size, tasks)
        self.norm = PerLayerNorm(input_layers, input_size)
        names = self.tasks if per_task else ("shared",)
        self.weights = torch.nn.ModuleDict(
            {n: SoftmaxLayerWeights(input_layers) for n in names}
        )
        self.per_task = per_task

    def output_size(self) -> int:
        return self.input_size

    def forward(
        self,
        feats: torch.Tensor,
        lengths: torch.Tensor,
        tasks: Optional[Sequence[str]] = None,
    ) -> FusionOutput:
        x = self.norm(feats)
        mask = valid_mask(lengths, x.size(1))[..., None]
        names = {t: t if self.per_task else "shared" for t in self.needed(tasks)}
        mixed = {
            n: self.weights[n](x).masked_fill(~mask, 0.0)
            for n in dict.fromkeys(names.values())
        }
        return FusionOutput({t: mixed[n] for t, n in names.items()})
