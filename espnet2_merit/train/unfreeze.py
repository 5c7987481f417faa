"""Cascade unfreezing of the SSL encoder (the ICASSP 2025 cascade system): the
heads train on a frozen SSL model first, then transformer layers become trainable
from the top down on a schedule, until the whole encoder (never the CNN feature
extractor) is fine-tuned.

The YAML option ``frontend_unfreeze`` takes one of two forms::

    frontend_unfreeze:          # explicit: (point, top layers trainable from it)
        unit: epoch             # or step (training batches, counted over the run)
        schedule: [[1, 0], [3, 1], [5, 2], [7, all]]

    frontend_unfreeze:          # periodic: k more layers every n points
        unit: epoch
        start: 3                # the first point with trainable layers
        every: 2
        layers: 1

``all`` is one level beyond the top ``L`` layers: the rest of the encoder too
(input projection, positional convolution, layer norms); the periodic form ends
there. The trainable set is a function of (epoch, batch) only, so a resumed run
has the same layers trainable as an uninterrupted one. Every parameter is in the
optimizer from the start (``MeritTask.build_optimizers``), in the frontend's group
at ``frontend_lr_scale``: a layer joins the optimisation when its gradients appear.
"""

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch

from espnet2_merit.errors import MeritInputError

logger = logging.getLogger(__name__)
OPTION = "frontend_unfreeze"
ALL = "all"
_KEYS = {"unit", "schedule", "start", "every", "layers"}


@dataclass(frozen=True)
class UnfreezeSchedule:
    """Points (epochs or batches, 1-based) at which the number of trainable top
    encoder layers changes; ``num_layers + 1`` stands for ``all``."""

    unit: str
    points: Tuple[Tuple[int, Any], ...]  # (point, layers: int or "all"), explicit
    start: int = 0  # periodic form when start > 0
    every: int = 1
    layers: int = 1

    @classmethod
    def from_config(cls, conf: Dict) -> "UnfreezeSchedule":
        """Validate the YAML mapping; every error names the field."""
        if not isinstance(conf, dict):
            raise MeritInputError(f"{OPTION}: expected a mapping, got {conf!r}")
        unknown = set(conf) - _KEYS
        if unknown:
            raise MeritInputError(f"{OPTION}: unknown keys {sorted(unknown)}")
        unit = conf.get("unit", "epoch")
        if unit not in ("epoch", "step"):
            raise MeritInputError(f"{OPTION}.unit={unit!r}: expected epoch or step")
        periodic = {"start", "every", "layers"} & set(conf)
        if ("schedule" in conf) == bool(periodic):
            raise MeritInputError(
                f"{OPTION}: give either 'schedule' or 'start'/'every'/'layers'"
            )
        if periodic:
            ints = {k: conf.get(k, 1) for k in ("start", "every", "layers")}
            for k, v in ints.items():
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise MeritInputError(f"{OPTION}.{k}={v!r}: expected an int >= 1")
            return cls(unit, (), **ints)
        points, last = [], (0, 0)
        for i, item in enumerate(conf["schedule"] or []):
            where = f"{OPTION}.schedule[{i}]={item!r}"
            if not (isinstance(item, (list, tuple)) and len(item) == 2):
                raise MeritInputError(f"{where}: expected [point, layers]")
            point, n = item
            if not isinstance(point, int) or point < 1 or point <= last[0]:
                raise MeritInputError(
                    f"{where}: the point must be an int >= 1, after the previous one"
                )
            if n != ALL and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
                raise MeritInputError(f"{where}: layers must be an int >= 0 or 'all'")
            if last[1] == ALL or (n != ALL and n < last[1]):
                raise MeritInputError(f"{where}: the schedule only unfreezes")
            points.append((point, n))
            last = (point, n)
        if not points:
            raise MeritInputError(f"{OPTION}.schedule is empty")
        return cls(unit, tuple(points))

    def level(self, epoch: int, step: int, num_layers: int) -> int:
        """Trainable top layers at ``epoch`` (1-based) before batch ``step`` (the
        run's 1-based batch count): 0..num_layers, or num_layers + 1 for all."""
        at = epoch if self.unit == "epoch" else step
        if self.start:
            if at < self.start:
                return 0
            return min(
                num_layers + 1, self.layers * (1 + (at - self.start) // self.every)
            )
        level = 0
        for point, n in self.points:
            if at >= point:
                level = num_layers + 1 if n == ALL else n
        return level

    def check(self, num_layers: int) -> None:
        """An explicit schedule may not name more layers than the encoder has."""
        for point, n in self.points:
            if n != ALL and n > num_layers:
                raise MeritInputError(
                    f"{OPTION}.schedule: [{point}, {n}] but the SSL encoder has "
                    f"{num_layers} layers (use 'all' for the whole encoder)"
                )


class EncoderUnfreezer:
    """Sets ``requires_grad`` of the frontend's parameters for a schedule level.

    Built before training, it takes over the parameters trainable at that point
    (``freeze_unreachable`` has frozen what never reaches the features) in two
    parts: the encoder's transformer layers, bottom to top, and the rest of the
    encoder. The CNN feature extractor is never unfrozen.
    """

    def __init__(self, frontend: torch.nn.Module, schedule: UnfreezeSchedule):
        self.schedule = schedule
        lists = [
            m
            for name, m in frontend.named_modules()
            if isinstance(m, torch.nn.ModuleList) and name.endswith("encoder.layers")
        ]
        if len(lists) != 1:
            raise MeritInputError(
                f"{OPTION}: the frontend ({type(frontend).__name__}) has no single "
                "SSL encoder layer list ('...encoder.layers'); cascade unfreezing "
                "needs an SSL frontend (frontend: s3prl)"
            )
        cnn = {
            id(p)
            for name, m in frontend.named_modules()
            if name.endswith("feature_extractor")
            for p in m.parameters()
        }
        for p in frontend.parameters():
            if id(p) in cnn:
                p.requires_grad_(False)
        groups = [[p for p in m.parameters() if p.requires_grad] for m in lists[0]]
        self.layers: List[List[torch.nn.Parameter]] = [g for g in groups if g]
        in_layers = {id(p) for g in self.layers for p in g}
        self.rest = [
            p
            for p in frontend.parameters()
            if p.requires_grad and id(p) not in in_layers
        ]
        if not self.layers:
            raise MeritInputError(
                f"{OPTION}: no encoder layer is trainable (is the frontend frozen "
                "by --freeze_param?)"
            )
        schedule.check(len(self.layers))
        self.current: Optional[int] = None

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def trainable(self, level: int) -> List[torch.nn.Parameter]:
        """The parameters trainable at ``level``: the top ``level`` layers, and
        beyond ``num_layers`` all of them and the rest of the encoder."""
        top = self.layers[self.num_layers - min(level, self.num_layers) :]
        params = [p for group in top for p in group]
        return params + (self.rest if level > self.num_layers else [])

    def apply(self, epoch: int, step: int) -> int:
        """Set the trainable set for (epoch, step), logging each change; returns
        the number of trainable frontend values."""
        level = self.schedule.level(epoch, step, self.num_layers)
        trainable = self.trainable(level)
        if level != self.current:
            keep = {id(p) for p in trainable}
            for p in self.rest + [p for g in self.layers for p in g]:
                p.requires_grad_(id(p) in keep)
            what = (
                "the whole encoder (not the CNN)"
                if level > self.num_layers
                else f"the top {level} of {self.num_layers} encoder layers"
            )
            logger.info(
                f"{OPTION}: epoch {epoch}, batch {step}: {what} trainable "
                f"({sum(p.numel() for p in trainable)} values)"
            )
            self.current = level
        return sum(p.numel() for p in trainable)
