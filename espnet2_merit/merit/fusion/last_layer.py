"""One layer of the stack, unchanged (the SER-only / SE-only baselines)."""

from typing import Optional, Sequence

import torch
from typeguard import typechecked

from espnet2_merit.merit.fusion.abs_fusion import AbsFusion, FusionOutput
from espnet2_merit.utils.masks import valid_mask


class LastLayerFusion(AbsFusion):
    """Every task gets layer ``layer`` (default the last) of the stack."""

    @typechecked
    def __init__(
        self,
        input_layers: int,
        input_size: int,
        tasks: Sequence[str],
        layer: int = -1,
    ):
        super().__init__(input_layers, input_size, tasks)
        if not -input_layers <= layer < input_layers:
            raise ValueError(f"fusion_conf.layer={layer}: the stack has {input_layers}")
        self.layer = layer

    def output_size(self) -> int:
        return self.input_size

    def forward(
        self,
        feats: torch.Tensor,
        lengths: torch.Tensor,
        tasks: Optional[Sequence[str]] = None,
    ) -> FusionOutput:
        x = feats[:, :, self.layer]
        x = x.masked_fill(~valid_mask(lengths, x.size(1))[..., None], 0.0)
        return FusionOutput({t: x for t in self.needed(tasks)})
