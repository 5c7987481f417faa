"""Class-balanced training batches (``--balanced_batches up|down``), the batch
sampling of Interspeech 2025 challenge systems (arXiv 2508.07282): every batch
holds the classes of a label target (``emotion``) in equal numbers.

Each pass over the data draws, per class, ``n`` utterances and deals them out
round-robin (the classes in a new random order each round), then cuts the
sequence into the sampler's batch size. ``up``: ``n`` is the largest class's
count, smaller classes repeat (each of their utterances as often as the others,
give or take one), every utterance is in every pass; ``down``: ``n`` is the
smallest class's count, a new random subset of each larger class every pass (all
are reached over passes). A batch of ``B`` holds ``B / C`` of each of ``C``
classes when ``C`` divides ``B`` (else the counts differ by at most one).
"""

from typing import Dict, List, Sequence, Tuple

import numpy as np
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import NO_TARGET
from espnet2_merit.train.reshuffled_iter_factory import ReshuffledBatches

MODES = ("none", "up", "down")


class ClassBalancedBatches(ReshuffledBatches):
    """``ReshuffledBatches`` whose passes are class-balanced draws (seeded by
    ``(seed, pass)``: resume- and rank-consistent; each rank takes its slice of
    every batch, so ranks are disjoint).

    Args:
        batches: The batch sampler's batches, before sharding (their largest size
            is the batch size).
        labels: Utterance id -> class, for every utterance of ``batches``.
        mode: ``up`` or ``down``.
        seed, rank, world_size: As ``ReshuffledBatches``.
        source: Where ``labels`` came from, for error messages.
    """

    @typechecked
    def __init__(
        self,
        batches: Sequence[Sequence[str]],
        labels: Dict[str, str],
        mode: str,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        source: str = "labels",
    ):
        super().__init__(batches, seed, rank, world_size)
        if mode not in ("up", "down"):
            raise MeritInputError(f"balanced_batches={mode!r}: expected up or down")
        missing = [k for k in self.keys if k not in labels]
        if missing:
            raise MeritInputError(
                f"balanced_batches: {source} has no class for {len(missing)} "
                f"training utterances (first: {missing[0]})"
            )
        unlabelled = [k for k in self.keys if labels[k] == NO_TARGET]
        if unlabelled:
            raise MeritInputError(
                f"balanced_batches: {source} marks {len(unlabelled)} training "
                f"utterances as unlabelled ('{NO_TARGET}', first: {unlabelled[0]}); "
                "class-balanced batches need a class for every utterance (train the "
                "unlabelled pool without --balanced_batches)"
            )
        classes = sorted({labels[k] for k in self.keys})
        if len(classes) < 2:
            raise MeritInputError(
                f"balanced_batches: {source} holds one class ({classes}); "
                "nothing to balance"
            )
        self.groups = [sorted(k for k in self.keys if labels[k] == c) for c in classes]
        counts = [len(g) for g in self.groups]
        self.per_class = max(counts) if mode == "up" else min(counts)
        self.mode = mode
        size = max(self.sizes)
        total = self.per_class * len(classes)
        self.sizes = [size] * (total // size)
        if total % size >= world_size:  # a last, smaller batch every rank shares
            self.sizes.append(total % size)

    def generate(self, seed: int) -> List[Tuple[str, ...]]:
        """This rank's batches of pass ``seed - self.seed``."""
        # A stream of its own (tag 2), not the plain reshuffle's (seed, pass).
        rng = np.random.default_rng([self.seed, seed - self.seed, 2])
        n = self.per_class
        drawn = []
        for group in self.groups:
            reps = -(-n // len(group))  # up: whole permutations, then cut
            order = np.concatenate([rng.permutation(len(group)) for _ in range(reps)])
            drawn.append([group[i] for i in order[:n]])
        dealt = [
            drawn[c][i] for i in range(n) for c in rng.permutation(len(self.groups))
        ]
        ends = np.cumsum(self.sizes)
        return [
            tuple(dealt[end - size : end][self.rank :: self.world_size])
            for size, end in zip(self.sizes, ends)
        ]
