"""--reshuffle_batches: every epoch the training utterances are re-drawn into the
sampler's batch sizes, reproducibly per (seed, epoch), disjoint across ranks;
false is ESPnet's iterator unchanged."""

import itertools

import pytest
import torch
from espnet2.iterators.sequence_iter_factory import SequenceIterFactory
from espnet2.tasks.abs_task import AbsTask
from espnet2.train.distributed_utils import DistributedOption
from merit_testing import SPARSE_TINY

from espnet2_merit.errors import MeritInputError
from espnet2_merit.tasks.merit import MeritTask
from espnet2_merit.train.reshuffled_iter_factory import ReshuffledIterFactory

# 20 utterances in unequal batches (as ESPnet's unsorted sampler spreads them).
KEYS = [f"utt{i:02d}" for i in range(20)]
SIZES = [3, 3, 4, 3, 3, 4]
BATCHES = [tuple(KEYS[e - n : e]) for n, e in zip(SIZES, itertools.accumulate(SIZES))]


def _epochs(factory, epochs=(1, 2, 3)):
    return [[tuple(b) for b in factory.build_iter(e).batch_sampler] for e in epochs]


def _factory(seed=7, rank=0, world_size=1, **kw):
    return ReshuffledIterFactory(
        KEYS, BATCHES, seed=seed, rank=rank, world_size=world_size, shuffle=True, **kw
    )


def test_new_batches_every_epoch_each_utterance_once_in_the_samplers_sizes():
    epochs = _epochs(_factory())
    as_sets = [{frozenset(b) for b in batches} for batches in epochs]
    assert as_sets[0] != as_sets[1] != as_sets[2] != as_sets[0]
    fixed = {frozenset(b) for b in BATCHES}
    assert all(s != fixed for s in as_sets)  # ESPnet's would be `fixed` every epoch
    for batches in epochs:
        assert sorted(itertools.chain(*batches)) == KEYS
        assert sorted(len(b) for b in batches) == sorted(SIZES)


def test_same_seed_and_epoch_give_the_same_batches():
    """A resumed run (a new factory asked for epoch 3) and a re-run agree."""
    assert _epochs(_factory(), [3]) == _epochs(_factory(), [1, 2, 3])[2:]
    assert _epochs(_factory(seed=8)) != _epochs(_factory(seed=7))


def test_two_ranks_take_disjoint_halves_of_every_batch():
    ranks = [_epochs(_factory(rank=r, world_size=2)) for r in (0, 1)]
    for epoch in range(3):
        whole = []
        for b0, b1 in zip(ranks[0][epoch], ranks[1][epoch]):
            assert not set(b0) & set(b1) and abs(len(b0) - len(b1)) <= 1
            whole.append(set(b0) | set(b1))
        assert sorted(len(b) for b in whole) == sorted(SIZES)
        assert sorted(itertools.chain(*whole)) == KEYS


def test_num_iters_per_epoch_walks_through_passes():
    factory = _factory(num_iters_per_epoch=3)
    e1, e2, e3, e4 = _epochs(factory, [1, 2, 3, 4])
    assert len(e1) == len(e2) == 3
    assert sorted(itertools.chain(*e1, *e2)) == KEYS  # one pass in two epochs
    assert sorted(itertools.chain(*e3, *e4)) == KEYS
    assert {frozenset(b) for b in e1 + e2} != {frozenset(b) for b in e3 + e4}


def test_refusals():
    with pytest.raises(MeritInputError, match="shuffle_within_batch: false"):
        _factory(shuffle_within_batch=True)
    with pytest.raises(MeritInputError, match="cannot be split over 4 processes"):
        _factory(rank=0, world_size=4)


# ---- through MeritTask.build_iter_factory ---------------------------------------


def _task_factories(make_args, reshuffle, mode="train", world_size=None, rank=0):
    args = make_args(
        SPARSE_TINY, "--reshuffle_batches", str(reshuffle).lower(), "--batch_size", "3"
    )
    option = DistributedOption(distributed=world_size is not None)
    return MeritTask.build_iter_factory(args, option, mode), args


@pytest.fixture
def two_ranks(monkeypatch):
    def set_rank(rank):
        monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
        monkeypatch.setattr(torch.distributed, "get_rank", lambda: rank)

    return set_rank


def test_task_false_is_espnets_iterator(make_args):
    merit, args = _task_factories(make_args, False)
    assert type(merit) is SequenceIterFactory
    options = MeritTask.build_iter_options(args, DistributedOption(), "train")
    espnet = AbsTask.__dict__["build_sequence_iter_factory"].__func__(
        MeritTask, args, options, "train"
    )
    assert _epochs(merit) == _epochs(espnet)


def test_task_true_redraws_training_batches_only(make_args, data_dirs):
    train, valid = data_dirs
    merit, _ = _task_factories(make_args, True)
    assert isinstance(merit, ReshuffledIterFactory)
    espnet, _ = _task_factories(make_args, False)
    ours, theirs = _epochs(merit), _epochs(espnet)
    assert [sorted(map(len, b)) for b in ours] == [sorted(map(len, b)) for b in theirs]
    assert {frozenset(b) for b in ours[0]} != {frozenset(b) for b in theirs[0]}
    ids = sorted(line.split()[0] for line in open(train / "wav.scp"))
    assert sorted(itertools.chain(*ours[1])) == ids
    valid_true, _ = _task_factories(make_args, True, mode="valid")
    valid_false, _ = _task_factories(make_args, False, mode="valid")
    assert type(valid_true) is SequenceIterFactory
    assert _epochs(valid_true) == _epochs(valid_false)


def test_task_two_ranks_are_disjoint_and_load_every_utterance(make_args, two_ranks):
    per_rank = []
    for rank in (0, 1):
        two_ranks(rank)
        factory, _ = _task_factories(make_args, True, world_size=2, rank=rank)
        per_rank.append(_epochs(factory, [1, 2]))
        # A rank loads utterances of any batch: its dataset holds them all.
        key = next(iter(per_rank[0][1][0]))
        assert factory.dataset[key][0] == key
    two_ranks(0)
    espnet, _ = _task_factories(make_args, False, world_size=2)
    for epoch in range(2):
        b0, b1 = per_rank[0][epoch], per_rank[1][epoch]
        assert len(b0) == len(b1) == len(_epochs(espnet)[epoch])
        assert not set(itertools.chain(*b0)) & set(itertools.chain(*b1))
        assert len(set(itertools.chain(*b0, *b1))) == 20
    assert per_rank[0][0] != per_rank[0][1]
