"""Interface of fusion modules: a stack of SSL layers -> one feature per task."""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import torch


@dataclass
class FusionOutput:
    """What a fusion module returns.

    Attributes:
        features: Task name -> (B, T, D') features; padding frames are zero.
        losses: Auxiliary loss name (e.g. ``balance_loss``, ``z_loss``) -> task ->
            scalar: one term per routed task, weighted per task by the model.
        usage: Task name -> (E,) share of the frames' routing mass per expert.
        routes: Task name -> (experts (B, T, k) long, gates (B, T, k)) per frame;
            padding frames hold expert -1 and gate 0.
    """

    features: Dict[str, torch.Tensor]
    losses: Dict[str, Dict[str, torch.Tensor]] = field(default_factory=dict)
    usage: Dict[str, torch.Tensor] = field(default_factory=dict)
    routes: Dict[str, Tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


class AbsFusion(torch.nn.Module, ABC):
    """Mixes L layers of D-dimensional features into a feature per task.

    Args (common to all subclasses, passed by the task):
        input_layers: L, layers in the frontend's stack.
        input_size: D, size of each layer.
        tasks: Names of the tasks that need a feature (the config's tasks).
    """

    def __init__(self, input_layers: int, input_size: int, tasks: Sequence[str]):
        super().__init__()
        if not tasks:
            raise ValueError("fusion needs at least one task")
        self.input_layers, self.input_size = input_layers, input_size
        self.tasks = tuple(tasks)

    @abstractmethod
    def output_size(self) -> int:
        """Size D' of each task's feature."""

    def aux_losses(self) -> Tuple[str, ...]:
        """Names of the auxiliary losses ``forward`` may return (the model weights
        them by ``model_conf.aux_loss_weights``; another name there is an error
        when the model is built); override if there are any."""
        return ()

    def needed(self, tasks: Optional[Sequence[str]]) -> Tuple[str, ...]:
        """The tasks whose features a call must return (all by default)."""
        if tasks is None:
            return self.tasks
        unknown = [t for t in tasks if t not in self.tasks]
        if unknown:
            raise ValueError(f"tasks {unknown} are not among the fusion's {self.tasks}")
        return tuple(tasks)

    @abstractmethod
    def forward(
        self,
        feats: torch.Tensor,
        lengths: torch.Tensor,
        tasks: Optional[Sequence[str]] = None,
    ) -> FusionOutput:
        """Fuse.

        Args:
            feats: (B, T, L, D) layer stack.
            lengths: (B,) valid frames.
            tasks: Tasks whose features are needed (default: all). Only these get
                ``features``, so their work alone is done (emotion-only inference
                skips the SE experts); routing is still reported for every task.
        """
