"""--balanced_batches up|down: every batch holds the classes in equal numbers,
every utterance is reachable, passes are reproducible, ranks are disjoint."""

import collections
import itertools

import pytest
from espnet2.train.distributed_utils import DistributedOption
from merit_testing import SPARSE_TINY

from espnet2_merit.errors import MeritInputError
from espnet2_merit.tasks.merit import MeritTask, check_pipeline
from espnet2_merit.train.balanced_batches import ClassBalancedBatches

# 24 utterances: A 12, B 8, C 4 (imbalanced), in batches of 6.
LABELS = {f"u{i:02d}": "A" if i < 12 else "B" if i < 20 else "C" for i in range(24)}
KEYS = sorted(LABELS)
BATCHES = [tuple(KEYS[i : i + 6]) for i in range(0, 24, 6)]


def _passes(mode, passes=range(3), **kw):
    sampler = ClassBalancedBatches(BATCHES, LABELS, mode, seed=7, **kw)
    return sampler, [sampler.generate(7 + p) for p in passes]


@pytest.mark.parametrize("mode, per_class", [("up", 12), ("down", 4)])
def test_every_batch_holds_the_classes_equally(mode, per_class):
    sampler, passes = _passes(mode)
    assert len(sampler) == 3 * per_class // 6
    for batches in passes:
        assert all(len(b) == 6 for b in batches)
        for batch in batches:
            assert collections.Counter(LABELS[k] for k in batch) == dict(A=2, B=2, C=2)
        drawn = collections.Counter(itertools.chain(*batches))
        counts = collections.Counter(LABELS[k] for k in drawn.elements())
        assert counts == {c: per_class for c in "ABC"}
        if mode == "up":  # everyone every pass; C's 4 three times, B's 8 1-2 times
            assert set(drawn) == set(KEYS)
            assert {drawn[k] for k in KEYS if LABELS[k] == "C"} == {3}
            assert {drawn[k] for k in KEYS if LABELS[k] == "B"} <= {1, 2}
        else:  # a subset each pass, each drawn once
            assert set(drawn.values()) == {1}
    assert passes[0] != passes[1]


def test_down_reaches_every_utterance_over_passes():
    _, passes = _passes("down", range(10))
    assert set(itertools.chain(*itertools.chain(*passes))) == set(KEYS)


def test_same_seed_and_pass_give_the_same_batches_and_ranks_are_disjoint():
    _, a = _passes("up")
    _, b = _passes("up", range(2, 3))
    assert a[2] == b[0]  # a resumed run asks for pass 2 alone
    _, r0 = _passes("up", rank=0, world_size=2)
    _, r1 = _passes("up", rank=1, world_size=2)
    for whole, x, y in zip(a[0], r0[0], r1[0]):
        assert sorted(x + y) == sorted(whole) and len(x) == len(y) == 3


def test_errors_name_the_problem():
    with pytest.raises(MeritInputError, match="no class for 1 training utterances"):
        ClassBalancedBatches(BATCHES, {k: LABELS[k] for k in KEYS[1:]}, "up")
    with pytest.raises(MeritInputError, match="one class"):
        ClassBalancedBatches(BATCHES, {k: "A" for k in KEYS}, "up")
    with pytest.raises(MeritInputError, match="marks 1 training utterances as un"):
        ClassBalancedBatches(BATCHES, {**LABELS, KEYS[3]: "-"}, "up")


def test_through_the_task(make_args, data_dirs):
    train, _ = data_dirs
    labels = dict(line.split() for line in open(train / "emotion"))
    args = make_args(SPARSE_TINY, "--balanced_batches", "down", "--batch_size", "4")
    factory = MeritTask.build_iter_factory(args, DistributedOption(), "train")
    assert isinstance(factory.sampler, ClassBalancedBatches)
    classes = set(labels.values())
    for batch in factory.build_iter(1).batch_sampler:
        counts = collections.Counter(labels[k] for k in batch)
        assert max(counts.values()) - min(counts.get(c, 0) for c in classes) <= 1
    args = make_args(SPARSE_TINY, "--balanced_batches", "up", "--reshuffle_batches",
                     "false")  # fmt: skip
    with pytest.raises(MeritInputError, match="needs reshuffle_batches: true"):
        check_pipeline(args)
    args = make_args(SPARSE_TINY, "--balanced_batches", "up",
                     "--balanced_batches_target", "gender")  # fmt: skip
    with pytest.raises(MeritInputError, match="has no such name"):
        MeritTask.build_iter_factory(args, DistributedOption(), "train")
