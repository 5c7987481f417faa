"""Attentive statistics pooling + MLP: the paper's emotion classifier."""

import torch
from typeguard import typechecked

from espnet2_merit.merit.fusion.layers import valid_mask
from espnet2_merit.merit.ser_head.abs_ser_head import AbsSERHead


class AttentiveStatsPooling(torch.nn.Module):
    """Attention-weighted mean and standard deviation over valid frames.

    w_t = softmax_t(v . tanh(W h_t + b)); out = [sum_t w_t h_t, sqrt(sum_t w_t h_t^2 -
    mean^2)]: (B, T, D) -> (B, 2D). Padding frames get zero weight.
    """

    def __init__(self, input_size: int):
        super().__init__()
        self.proj = torch.nn.Linear(input_size, input_size)
        self.score = torch.nn.Linear(input_size, 1, bias=False)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        scores = self.score(torch.tanh(self.proj(x))).squeeze(-1)  # (B, T)
        mask = valid_mask(lengths, x.size(1))
        weights = scores.float().masked_fill(~mask, float("-inf")).softmax(-1)
        weights = weights.to(x.dtype)[..., None]
        mean = (weights * x).sum(1)
        var = (weights * x.pow(2)).sum(1) - mean.pow(2)
        return torch.cat([mean, var.clamp(min=1e-5).sqrt()], dim=-1)


class AttentivePoolingClassifier(AbsSERHead):
    """Pooling (-> 2D) -> dropout -> Linear(hidden) -> LayerNorm -> ReLU -> dropout
    -> Linear(num_outputs)."""

    target = "emotion"

    @typechecked
    def __init__(
        self,
        input_size: int,
        num_outputs: int,
        hidden_size: int = 1024,
        dropout: float = 0.5,
    ):
        """Build the head.

        Args:
            input_size: Size D of the fused SER feature.
            num_outputs: Classes (set by the task from the emotion list).
            hidden_size: Size of the hidden layer.
            dropout: Dropout before each linear layer.
        """
        super().__init__()
        self.pooling = AttentiveStatsPooling(input_size)
        self.mlp = torch.nn.Sequential(
            torch.nn.Dropout(dropout),
            torch.nn.Linear(2 * input_size, hidden_size),
            torch.nn.LayerNorm(hidden_size),
            torch.nn.ReLU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden_size, num_outputs),
        )
        self.num_outputs = num_outputs

    def output_size(self) -> int:
        return self.num_outputs

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, num_outputs) logits."""
        return self.mlp(self.pooling(feats, lengths))
