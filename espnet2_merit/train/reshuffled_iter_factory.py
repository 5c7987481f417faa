"""Training batches re-drawn every epoch, as a torch ``DataLoader(shuffle=True)``
draws them (the authors' release), with ESPnet's batch sizes and sharding.

ESPnet's ``SequenceIterFactory`` keeps the batch sampler's batches for the whole
run and only shuffles their order each epoch: with ``batch_type: unsorted`` the
same consecutive utterances (on MSP-Podcast, segments of one podcast) always
share a batch. ``--reshuffle_batches true`` (``MeritTask``) swaps in
``ReshuffledIterFactory``.
"""

import logging
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from espnet2.iterators.sequence_iter_factory import SequenceIterFactory
from espnet2.samplers.abs_sampler import AbsSampler
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError


class ReshuffledBatches(AbsSampler):
    """The batch sampler's batch sizes, filled on every pass over the data with a
    new permutation of all its utterances.

    The permutation of pass ``p`` comes from a generator seeded by
    ``(seed, p)``: a resumed run and a re-run see the same batches, and every
    rank draws the same permutation. Each rank then takes its slice
    ``batch[rank::world_size]`` of every batch (as ESPnet shards batches), so the
    ranks' batches are disjoint and together are the whole batch.

    The sizes keep what ``batch_size`` means for ``batch_type: unsorted`` or
    ``sorted``; batches sized by length (``numel``, ``length``, ``folded``) are
    refilled with utterances of other lengths, so their bins no longer bound the
    padded size.

    Args:
        batches: The batch sampler's batches, before sharding (all ranks').
        seed: The run's ``--seed``.
        rank: This process's rank.
        world_size: The number of processes.
    """

    @typechecked
    def __init__(
        self,
        batches: Sequence[Sequence[str]],
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        self.sizes = [len(b) for b in batches]
        if min(self.sizes, default=world_size) < world_size:
            raise MeritInputError(
                f"reshuffle_batches: a batch of {min(self.sizes)} utterances cannot "
                f"be split over {world_size} processes (raise batch_size)"
            )
        self.keys = [k for b in batches for k in b]
        if len(set(self.keys)) != len(self.keys):
            raise ValueError("the batch sampler repeated an utterance")
        self.seed = seed
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        return len(self.sizes)

    def __iter__(self):
        return iter(self.generate(self.seed))

    def generate(self, seed: int) -> List[Tuple[str, ...]]:
        """This rank's batches of pass ``seed - self.seed``.

        ``SequenceIterFactory`` asks its sampler for pass ``p`` as
        ``generate(p + seed)``.
        """
        order = np.random.default_rng([self.seed, seed - self.seed]).permutation(
            len(self.keys)
        )
        keys = [self.keys[i] for i in order]
        ends = np.cumsum(self.sizes)
        return [
            tuple(keys[end - size : end][self.rank :: self.world_size])
            for size, end in zip(self.sizes, ends)
        ]


class ReshuffledIterFactory(SequenceIterFactory):
    """ESPnet's ``SequenceIterFactory`` over ``ReshuffledBatches``: each epoch's
    batches are a new draw of the utterances in the sampler's batch sizes
    (``num_iters_per_epoch`` works as in ESPnet: it asks for passes).

    Args:
        dataset: A dataset holding every utterance of ``batches`` (each rank
            loads utterances of any batch).
        batches: The batch sampler's batches, before sharding.
        seed: The run's ``--seed``.
        rank: This process's rank.
        world_size: The number of processes.
        shuffle_within_batch: Must be false: ESPnet's ``--shuffle_within_batch``
            re-cuts batches too, in the first batch's size.
        sampler: A ``ReshuffledBatches`` built by the caller (another draw, e.g.
            ``ClassBalancedBatches``) instead of one over ``batches``.
        **kwargs: ``SequenceIterFactory``'s other arguments.
    """

    @typechecked
    def __init__(
        self,
        dataset: Any,
        batches: Sequence[Sequence[str]],
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle_within_batch: bool = False,
        sampler: Optional[ReshuffledBatches] = None,
        **kwargs,
    ):
        if shuffle_within_batch:
            raise MeritInputError(
                "reshuffle_batches: true re-draws the batches itself; "
                "set shuffle_within_batch: false"
            )
        sampler = sampler or ReshuffledBatches(batches, seed, rank, world_size)
        super().__init__(dataset, sampler, seed=seed, **kwargs)
        logging.info(
            f"training batches re-drawn every epoch ({type(sampler).__name__}): "
            f"{len(sampler)} batches, "
            f"{len(sampler.keys)} utterances (rank {rank} of {world_size})"
        )
