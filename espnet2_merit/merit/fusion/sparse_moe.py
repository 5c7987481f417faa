"""Sparse MERIT: frame-wise top-k routing of fused SSL layers to a shared expert pool.

Where routing happens. Each task (SE, SER, ...) has its own router; all tasks share
the experts. Only the chosen (frame, expert) pairs are computed: the frames of each
expert are gathered, the expert runs once on them (once even when several tasks chose
it for the same frame) and the results are gathered back per task.
"""

from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import torch
from typeguard import typechecked

from espnet2_merit.merit.fusion.abs_fusion import AbsFusion, FusionOutput
from espnet2_merit.merit.fusion.layers import PerLayerNorm, SoftmaxLayerWeights
from espnet2_merit.utils.masks import valid_mask


class Routing(NamedTuple):
    """One task's routing of N valid frames."""

    logits: torch.Tensor  # (N, E) float32
    probs: torch.Tensor  # (N, E)
    experts: torch.Tensor  # (N, k) chosen experts
    gates: torch.Tensor  # (N, k) weights of the chosen experts' outputs


def switch_balance_loss(probs: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    """Switch-Transformer load-balancing loss E * sum_i f_i * P_i (1 when uniform).

    Args:
        probs: (N, E) router probabilities of valid frames.
        experts: (N, k) experts chosen for them.
    """
    num_experts = probs.size(-1)
    counts = torch.zeros_like(probs[0]).index_add_(
        0, experts.flatten(), torch.ones_like(experts.flatten(), dtype=probs.dtype)
    )
    fraction = counts / experts.numel()
    return num_experts * (fraction * probs.mean(0)).sum()


class SparseMoEFusion(AbsFusion):
    """Per-layer LayerNorm -> concat (or weighted sum) -> top-k of E shared experts.

    The chosen experts' outputs are scaled by their gate probabilities (Switch-style;
    renormalised over the k chosen when k > 1), so the routers receive gradients from
    the task losses. ``router_grad: none`` instead weights the chosen experts equally
    with no gradient to the routers (the authors' hard one-hot, for comparison); the
    router losses are then not applied either.
    """

    @typechecked
    def __init__(
        self,
        input_layers: int,
        input_size: int,
        tasks: Sequence[str],
        num_experts: int = 3,
        hidden_size: int = 4096,
        output_size: int = 1024,
        top_k: int = 1,
        combine: str = "concat",
        router_grad: str = "gate",
        dropout: float = 0.0,
    ):
        """Build the experts and one router per task.

        Args:
            input_layers: L, layers in the stack.
            input_size: D, size of each layer.
            tasks: Tasks that get a router.
            num_experts: E, experts in the shared pool.
            hidden_size: Hidden size of each expert MLP.
            output_size: Size of each expert's output (the task feature).
            top_k: Experts chosen per frame and task.
            combine: "concat" (L*D expert input, the paper) or "weighted_sum"
                (D-dimensional input, a learnable softmax mix of the layers).
            router_grad: "gate" (learned routers) or "none" (untrained, hard).
            dropout: Dropout between the two layers of each expert.
        """
        super().__init__(input_layers, input_size, tasks)
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k={top_k} must be in [1, num_experts={num_experts}]")
        if combine not in ("concat", "weighted_sum"):
            raise ValueError(f"combine='{combine}': use 'concat' or 'weighted_sum'")
        if router_grad not in ("gate", "none"):
            raise ValueError(f"router_grad='{router_grad}': use 'gate' or 'none'")
        self.num_experts, self.top_k, self.router_grad = num_experts, top_k, router_grad
        self.norm = PerLayerNorm(input_layers, input_size)
        self.combine = (
            None if combine == "concat" else SoftmaxLayerWeights(input_layers)
        )
        in_size = input_layers * input_size if combine == "concat" else input_size
        self._output_size = output_size
        self.experts = torch.nn.ModuleList(
            torch.nn.Sequential(
                torch.nn.Linear(in_size, hidden_size),
                torch.nn.ReLU(),
                torch.nn.Dropout(dropout),
                torch.nn.Linear(hidden_size, output_size),
            )
            for _ in range(num_experts)
        )
        self.routers = torch.nn.ModuleDict(
            {t: torch.nn.Linear(in_size, num_experts) for t in self.tasks}
        )
        if router_grad == "none":
            # Random routers that nothing trains: no optimizer or DDP reduction
            # should wait for their (never computed) gradients.
            self.routers.requires_grad_(False)

    def output_size(self) -> int:
        return self._output_size

    def aux_losses(self) -> Tuple[str, ...]:
        # Untrained routers (router_grad: none) compute neither.
        return ("balance_loss", "z_loss")

    def tokens(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, L, D) stacks -> (N, D_in) expert inputs of the N valid frames.

        Valid frames are selected before the LayerNorm, so padding is neither
        normalised nor routed, and no (B, T, D_in) intermediate is materialised.
        """
        valid = valid_mask(lengths, feats.size(1)).flatten().nonzero()[:, 0]
        x = self.norm(feats.flatten(0, 1).index_select(0, valid))  # (N, L, D)
        return x.flatten(1) if self.combine is None else self.combine(x)

    def route(self, tokens: torch.Tensor) -> Dict[str, Routing]:
        """Route (N, D_in) frames for every task; the routers run in float32.

        The routers are applied as one stacked matrix: one skinny matmul (and one
        in the backward) instead of one per task.
        """
        routers = [self.routers[t] for t in self.tasks]
        weight = torch.cat([r.weight for r in routers]).float()
        bias = torch.cat([r.bias for r in routers]).float()
        with torch.autocast(tokens.device.type, enabled=False):
            stacked = torch.nn.functional.linear(tokens.float(), weight, bias)
        routing = {}
        for task, logits in zip(self.tasks, stacked.split(self.num_experts, -1)):
            probs = logits.softmax(-1)
            gates, experts = probs.topk(self.top_k, dim=-1)
            if self.router_grad == "none":
                gates = torch.full_like(gates, 1.0 / self.top_k)
            elif self.top_k > 1:
                gates = gates / gates.sum(-1, keepdim=True)
            routing[task] = Routing(logits, probs, experts, gates)
        return routing

    def dispatch(
        self, tokens: torch.Tensor, routing: Dict[str, Routing]
    ) -> Dict[str, torch.Tensor]:
        """Run each chosen (frame, expert) pair once; combine per task.

        Args:
            tokens: (N, D_in) valid frames.
            routing: Task -> its routing of these frames.

        Returns:
            Task -> (N, D_out) gate-weighted sum of its chosen experts' outputs.
        """
        if not routing:
            return {}
        if torch.jit.is_tracing():
            # An exported graph serves every input, so data-dependent grouping would
            # be frozen into it: compute every expert and gather the chosen ones.
            every = torch.stack([expert(tokens) for expert in self.experts], 1)
            return {
                t: (
                    every.gather(1, r.experts[..., None].expand(-1, -1, every.size(-1)))
                    * r.gates[..., None].to(every.dtype)
                ).sum(1)
                for t, r in routing.items()
            }
        num = tokens.size(0)
        chosen = torch.zeros(
            self.num_experts, num, dtype=torch.bool, device=tokens.device
        )
        for r in routing.values():
            chosen.scatter_(0, r.experts.t(), True)
        expert_ids, frame_ids = chosen.nonzero(as_tuple=True)  # grouped by expert
        counts = chosen.sum(1).tolist()
        # One gather for all experts: its backward is a single index_add, several
        # times faster on CPU than one advanced-indexing gather per expert.
        grouped = tokens.index_select(0, frame_ids).split(counts)
        # An expert that got no frames still runs (on zero rows, nearly free) so
        # that its parameters stay in the graph with a zero gradient: under DDP a
        # parameter left out on one rank stalls the gradient reduction.
        outputs = [expert(x) for expert, x in zip(self.experts, grouped)]
        pairs = torch.cat(outputs)  # (P, D_out), one row per distinct pair
        slot = torch.full_like(chosen, -1, dtype=torch.long)
        slot[expert_ids, frame_ids] = torch.arange(len(frame_ids), device=slot.device)
        frames = torch.arange(num, device=tokens.device)[:, None]
        return {
            t: (
                pairs[slot[r.experts, frames]] * r.gates[..., None].to(pairs.dtype)
            ).sum(1)
            for t, r in routing.items()
        }

    def forward(
        self,
        feats: torch.Tensor,
        lengths: torch.Tensor,
        tasks: Optional[Sequence[str]] = None,
    ) -> FusionOutput:
        """Fuse (B, T, L, D) stacks into (B, T, output_size) features of ``tasks``
        (default all); every task is routed, only those tasks' experts run."""
        bsz, frames = feats.shape[:2]
        mask = valid_mask(lengths, frames)
        tokens = self.tokens(feats, lengths)
        routing = self.route(tokens)
        mixed = self.dispatch(tokens, {t: routing[t] for t in self.needed(tasks)})

        out = FusionOutput(features={})
        for t, r in routing.items():
            if t in mixed:
                feat = mixed[t].new_zeros(bsz, frames, self._output_size)
                feat[mask] = mixed[t]
                out.features[t] = feat
            experts = torch.full(
                (bsz, frames, self.top_k), -1, dtype=torch.long, device=feats.device
            )
            experts[mask] = r.experts
            gates = r.gates.new_zeros(bsz, frames, self.top_k)
            gates[mask] = r.gates.detach()
            out.routes[t] = (experts, gates)
            if self.top_k == self.num_experts:  # dense: every expert is "chosen"
                out.usage[t] = r.probs.detach().mean(0)
            else:
                out.usage[t] = (
                    torch.bincount(
                        r.experts.flatten(), minlength=self.num_experts
                    ).float()
                    / r.experts.numel()
                )
        if self.router_grad != "none":
            # One term per task, each weighted on its own (model_conf): averaging
            # them would halve every task's weight with two tasks.
            out.losses["balance_loss"] = {
                t: switch_balance_loss(r.probs, r.experts) for t, r in routing.items()
            }
            out.losses["z_loss"] = {
                t: r.logits.logsumexp(-1).pow(2).mean() for t, r in routing.items()
            }
        return out
