"""Tells the dataset which epoch it is loading (``--dynamic_mixing``).

ESPnet's trainer calls ``iter_factory.build_iter(epoch)`` once per epoch and the
factory builds a new DataLoader, whose workers are forked when it is first
iterated, after ``build_iter`` returns. ``EpochIterFactory`` sets the epoch on
the preprocessor (``set_epoch``) in ``build_iter``, before delegating, so the
main process and every worker of that epoch's DataLoader draw that epoch's
mixtures. It wraps any factory (``SequenceIterFactory``,
``ReshuffledIterFactory``, ...); a resumed run starts at the resumed epoch, so
it sees the same mixtures as the run it continues.
"""

from typing import Any, Iterator, Optional, Sequence

from espnet2.iterators.abs_iter_factory import AbsIterFactory
from typeguard import typechecked


class EpochIterFactory(AbsIterFactory):
    """An iterator factory that calls ``set_epoch(epoch)`` on ``listeners``
    before building each epoch's iterator.

    Args:
        factory: The factory that builds the iterators.
        listeners: Objects with ``set_epoch(epoch: int)`` (the preprocessor).
    """

    @typechecked
    def __init__(self, factory: AbsIterFactory, listeners: Sequence[Any]):
        for listener in listeners:
            if not callable(getattr(listener, "set_epoch", None)):
                raise TypeError(f"{listener!r} has no set_epoch(epoch)")
        self.factory = factory
        self.listeners = list(listeners)

    def build_iter(self, epoch: int, shuffle: Optional[bool] = None) -> Iterator:
        for listener in self.listeners:
            listener.set_epoch(epoch)
        return self.factory.build_iter(epoch, shuffle)

    def __getattr__(self, name: str):
        # The wrapped factory's attributes (sampler, dataset, ...); "factory"
        # itself is looked up here only before __init__ (unpickling).
        if name == "factory":
            raise AttributeError(name)
        return getattr(self.factory, name)
