"""Building blocks shared by the fusion modules."""

import torch
import torch.nn.functional as F


class PerLayerNorm(torch.nn.Module):
    """An independent LayerNorm(D) for each of L layers, applied in one op.

    Equivalent to L separate ``nn.LayerNorm(D)`` modules (as in the paper) but
    without splitting the stack.
    """

    def __init__(self, num_layers: int, size: int, eps: float = 1e-5):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(num_layers, size))
        self.bias = torch.nn.Parameter(torch.zeros(num_layers, size))
        self.eps, self.size = eps, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., L, D) -> (..., L, D)."""
        # addcmul: the affine in one pass over the (large) stack instead of two.
        normed = F.layer_norm(x, (self.size,), eps=self.eps)  # static for export
        return torch.addcmul(self.bias, normed, self.weight)


class SoftmaxLayerWeights(torch.nn.Module):
    """Learnable softmax weighting of L layers: (..., L, D) -> (..., D)."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.zeros(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...ld,l->...d", x, self.logits.softmax(0).to(x.dtype))
