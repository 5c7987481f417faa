"""Sparse MERIT: frame-wise routing of fused SSL layers to a shared expert pool.

Where routing happens. Each task (SE, SER, ...) has its own router; all tasks share
the experts. Only the chosen (frame, expert) pairs are computed: the frames of each
expert are gathered, the expert runs once on them (once even when several tasks chose
it for the same frame) and the results are gathered back per task.

How many experts a frame gets. Per task, either a fixed top-k (``top_k``, one k for
every task or one per task) or top-p (``top_p``: the fewest experts whose router
probability reaches p, at most ``max_k``), so that the count varies from frame to
frame. Optional shared experts (``num_shared``) run on every valid frame beside the
routed ones. Every decision depends on the frame alone, never on the other frames or
utterances of the batch, so a batch gives what its utterances give one by one.
"""

from typing import Dict, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from typeguard import typechecked

from espnet2_merit.merit.fusion.abs_fusion import AbsFusion, FusionOutput
from espnet2_merit.merit.fusion.layers import PerLayerNorm, SoftmaxLayerWeights
from espnet2_merit.utils.masks import valid_mask


class Routing(NamedTuple):
    """One task's routing of N valid frames (K: the task's most choices a frame)."""

    logits: torch.Tensor  # (N, E) float32
    probs: torch.Tensor  # (N, E)
    experts: torch.Tensor  # (N, K) chosen experts, -1 in unused slots
    gates: torch.Tensor  # (N, K) weights of the chosen experts' outputs, 0 unused


class Rule(NamedTuple):
    """How one task chooses its experts: top-k (``top_p`` None) or top-p."""

    max_k: int  # K: at most this many experts a frame (exactly this many for top-k)
    top_p: Optional[float] = None


def switch_balance_loss(probs: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    """Switch-Transformer load-balancing loss E * sum_i f_i * P_i (1 when uniform).

    f_i is expert i's share of all choices (a frame choosing several experts counts
    once for each, unused slots not at all), P_i its mean router probability; with
    k choices on every frame this is the usual top-k loss.

    Args:
        probs: (N, E) router probabilities of valid frames.
        experts: (N, K) experts chosen for them, -1 in unused slots.
    """
    num_experts = probs.size(-1)
    chosen = experts[experts >= 0]
    counts = torch.zeros_like(probs[0]).index_add_(
        0, chosen, torch.ones_like(chosen, dtype=probs.dtype)
    )
    fraction = counts / max(chosen.numel(), 1)
    return num_experts * (fraction * probs.mean(0)).sum()


def experts_per_frame(experts: torch.Tensor) -> torch.Tensor:
    """(..., K) routes (-1 unused or padding) -> (...) number of experts chosen."""
    return (experts >= 0).sum(-1)


def _per_task(name: str, value, tasks: Sequence[str]) -> Dict:
    """One value for every task, or a dict that must name each task exactly."""
    if not isinstance(value, dict):
        return {t: value for t in tasks}
    unknown = sorted(set(value) - set(tasks))
    missing = [t for t in tasks if t not in value]
    if unknown or missing:
        raise ValueError(
            f"{name}: per-task values must name every task {list(tasks)}: "
            f"unknown {unknown}, missing {missing}"
        )
    return dict(value)


class SparseMoEFusion(AbsFusion):
    """Per-layer LayerNorm -> concat (or weighted sum) -> top-k / top-p of E shared
    experts (+ optional shared experts every frame uses).

    The chosen experts' outputs are scaled by their gate probabilities (Switch-style;
    renormalised over a frame's chosen experts when it has several), so the routers
    receive gradients from the task losses. ``router_grad: none`` instead weights
    the chosen experts equally with no gradient to the routers (the authors' hard
    one-hot, for comparison); the router losses are then not applied either.
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
        top_k: Optional[Union[int, Dict[str, int]]] = None,
        top_p: Optional[Union[float, Dict[str, float]]] = None,
        max_k: Optional[int] = None,
        num_shared: int = 0,
        combine: str = "concat",
        router_grad: str = "gate",
        dropout: float = 0.0,
    ):
        """Build the experts and one router per task.

        Args:
            input_layers: L, layers in the stack.
            input_size: D, size of each layer.
            tasks: Tasks that get a router.
            num_experts: E, routed experts in the shared pool.
            hidden_size: Hidden size of each expert MLP.
            output_size: Size of each expert's output (the task feature).
            top_k: Experts chosen per frame: one k for every task, or a dict
                naming each task (e.g. ``{se: 1, ser: 2}``); default 1. Not
                with ``top_p``.
            top_p: Instead of a fixed k, per frame the fewest experts whose router
                probability sums to at least p (in (0, 1]); one p or a dict per
                task, like ``top_k``.
            max_k: With ``top_p``, at most this many experts a frame (default E).
            num_shared: Shared experts (same shape as the routed ones) that every
                valid frame of every task uses, added with weight 1 to the gated
                sum of the routed experts; one set for all tasks.
            combine: "concat" (L*D expert input, the paper) or "weighted_sum"
                (D-dimensional input, a learnable softmax mix of the layers).
            router_grad: "gate" (learned routers) or "none" (untrained, hard).
            dropout: Dropout between the two layers of each expert.
        """
        super().__init__(input_layers, input_size, tasks)
        if num_experts < 1:
            raise ValueError(f"num_experts={num_experts} must be at least 1")
        if combine not in ("concat", "weighted_sum"):
            raise ValueError(f"combine='{combine}': use 'concat' or 'weighted_sum'")
        if router_grad not in ("gate", "none"):
            raise ValueError(f"router_grad='{router_grad}': use 'gate' or 'none'")
        if num_shared < 0:
            raise ValueError(f"num_shared={num_shared} must be >= 0")
        self.rules = self._rules(num_experts, top_k, top_p, max_k)
        self.num_experts, self.router_grad = num_experts, router_grad
        self.num_shared = num_shared
        self.norm = PerLayerNorm(input_layers, input_size)
        self.combine = (
            None if combine == "concat" else SoftmaxLayerWeights(input_layers)
        )
        in_size = input_layers * input_size if combine == "concat" else input_size
        self._output_size = output_size

        def expert():
            return torch.nn.Sequential(
                torch.nn.Linear(in_size, hidden_size),
                torch.nn.ReLU(),
                torch.nn.Dropout(dropout),
                torch.nn.Linear(hidden_size, output_size),
            )

        self.experts = torch.nn.ModuleList(expert() for _ in range(num_experts))
        self.shared_experts = torch.nn.ModuleList(expert() for _ in range(num_shared))
        self.routers = torch.nn.ModuleDict(
            {t: torch.nn.Linear(in_size, num_experts) for t in self.tasks}
        )
        if router_grad == "none":
            # Random routers that nothing trains: no optimizer or DDP reduction
            # should wait for their (never computed) gradients.
            self.routers.requires_grad_(False)

    def _rules(self, num_experts, top_k, top_p, max_k) -> Dict[str, Rule]:
        """Validated per-task routing rules."""
        if top_p is None:
            if max_k is not None:
                raise ValueError("max_k caps top_p routing: set top_p, or use top_k")
            ks = _per_task("top_k", 1 if top_k is None else top_k, self.tasks)
            for task, k in ks.items():
                if not 1 <= k <= num_experts:
                    raise ValueError(
                        f"top_k={k} (task '{task}') must be in "
                        f"[1, num_experts={num_experts}]"
                    )
            return {t: Rule(k) for t, k in ks.items()}
        if top_k is not None:
            raise ValueError(
                "top_k and top_p exclude each other: top_p chooses a variable "
                "number of experts per frame (cap it with max_k); set top_k: null "
                "(--fusion_conf top_k=null) over a config that sets top_k"
            )
        max_k = num_experts if max_k is None else max_k
        if not 1 <= max_k <= num_experts:
            raise ValueError(f"max_k={max_k} must be in [1, num_experts={num_experts}]")
        ps = _per_task("top_p", top_p, self.tasks)
        for task, p in ps.items():
            if not 0.0 < p <= 1.0:
                raise ValueError(f"top_p={p} (task '{task}') must be in (0, 1]")
        return {t: Rule(max_k, float(p)) for t, p in ps.items()}

    @property
    def top_k(self) -> int:
        """The most experts any task routes a frame to (the routes' width)."""
        return max(r.max_k for r in self.rules.values())

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

    def choose(self, probs: torch.Tensor, rule: Rule) -> Tuple[torch.Tensor, ...]:
        """(N, E) router probabilities -> (N, K) experts and gates under ``rule``.

        Top-p keeps, per frame, the most probable experts up to the first whose
        cumulative probability reaches p (at least one, at most K); the slots it
        does not keep hold expert -1 and gate 0. Gates are the probabilities of
        the kept experts, renormalised over them when a frame keeps several (as
        top-k with k > 1), so a one-expert frame still trains its router.
        """
        gates, experts = probs.topk(rule.max_k, dim=-1)
        if rule.top_p is None:
            keep = torch.ones_like(experts, dtype=torch.bool)
        else:
            before = gates.detach().cumsum(-1) - gates.detach()  # mass before slot
            keep = before < rule.top_p
            keep[:, 0] = True
            experts = experts.masked_fill(~keep, -1)
            gates = gates.masked_fill(~keep, 0.0)
        count = keep.sum(-1, keepdim=True)
        if self.router_grad == "none":
            return experts, keep / count
        several = count > 1
        return experts, torch.where(several, gates / gates.sum(-1, keepdim=True), gates)

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
            experts, gates = self.choose(probs, self.rules[task])
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
            Task -> (N, D_out) gate-weighted sum of its chosen experts' outputs
            (+ the shared experts' outputs).
        """
        if not routing:
            return {}
        shared = None
        if self.num_shared:  # every valid frame, once for all tasks
            shared = sum(expert(tokens) for expert in self.shared_experts)
        if torch.jit.is_tracing():
            # An exported graph serves every input, so data-dependent grouping would
            # be frozen into it: compute every expert and gather the chosen ones.
            every = torch.stack([expert(tokens) for expert in self.experts], 1)
            mixed = {
                t: (
                    every.gather(
                        1,
                        r.experts.clamp(min=0)[..., None].expand(
                            -1, -1, every.size(-1)
                        ),
                    )
                    * r.gates[..., None].to(every.dtype)
                ).sum(1)
                for t, r in routing.items()
            }
        else:
            mixed = self._grouped(tokens, routing)
        if shared is not None:
            mixed = {t: m + shared for t, m in mixed.items()}
        return mixed

    def _grouped(
        self, tokens: torch.Tensor, routing: Dict[str, Routing]
    ) -> Dict[str, torch.Tensor]:
        """``dispatch`` computing only the distinct chosen (frame, expert) pairs."""
        num = tokens.size(0)
        chosen = torch.zeros(
            self.num_experts, num, dtype=torch.bool, device=tokens.device
        )
        frames = torch.arange(num, device=tokens.device)[:, None]
        for r in routing.values():
            used = r.experts >= 0  # unused top-p slots choose nothing
            chosen[r.experts[used], frames.expand_as(used)[used]] = True
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
        out = {}
        for t, r in routing.items():
            # an unused slot reads some computed row and weights it by gate 0
            rows = slot[r.experts.clamp(min=0), frames].clamp(min=0)
            out[t] = (pairs[rows] * r.gates[..., None].to(pairs.dtype)).sum(1)
        return out

    def forward(
        self,
        feats: torch.Tensor,
        lengths: torch.Tensor,
        tasks: Optional[Sequence[str]] = None,
    ) -> FusionOutput:
        """Fuse (B, T, L, D) stacks into (B, T, output_size) features of ``tasks``
        (default all); every task is routed, only those tasks' experts run.

        ``routes[task]`` holds (B, T, K) experts and gates, K the task's most
        choices a frame (``max_k`` for top-p); ``experts_per_frame`` of the
        experts gives each frame's count (0 on padding).
        """
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
            width = r.experts.size(-1)
            experts = torch.full(
                (bsz, frames, width), -1, dtype=torch.long, device=feats.device
            )
            experts[mask] = r.experts
            gates = r.gates.new_zeros(bsz, frames, width)
            gates[mask] = r.gates.detach()
            out.routes[t] = (experts, gates)
            rule = self.rules[t]
            if rule.top_p is None and rule.max_k == self.num_experts:
                out.usage[t] = r.probs.detach().mean(0)  # dense: all "chosen"
            else:
                used = r.experts[r.experts >= 0]
                out.usage[t] = torch.bincount(
                    used, minlength=self.num_experts
                ).float() / max(used.numel(), 1)
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
