"""Dense MERIT: every task mixes all experts with its softmax gate."""

from typing import Sequence

from typeguard import typechecked

from espnet2_merit.merit.fusion.sparse_moe import SparseMoEFusion


class DenseMoEFusion(SparseMoEFusion):
    """``SparseMoEFusion`` with k = E: each expert runs once on every frame and each
    task's feature is its softmax-weighted sum of all expert outputs."""

    @typechecked
    def __init__(
        self,
        input_layers: int,
        input_size: int,
        tasks: Sequence[str],
        num_experts: int = 3,
        hidden_size: int = 4096,
        output_size: int = 1024,
        combine: str = "concat",
        dropout: float = 0.0,
    ):
        super().__init__(
            input_layers,
            input_size,
            tasks,
            num_experts=num_experts,
            hidden_size=hidden_size,
            output_size=output_size,
            top_k=num_experts,
            combine=combine,
            router_grad="gate",
            dropout=dropout,
        )
