"""Every fusion module: shapes, padding, gradients, batch == one-by-one."""

import pytest
import torch

from espnet2_merit.merit.fusion.dense_moe import DenseMoEFusion
from espnet2_merit.merit.fusion.last_layer import LastLayerFusion
from espnet2_merit.merit.fusion.sparse_moe import SparseMoEFusion
from espnet2_merit.merit.fusion.weighted_sum import WeightedSumFusion

L, D = 4, 6
MOE = dict(num_experts=3, hidden_size=12, output_size=5)
FUSIONS = {
    "sparse_top1": (SparseMoEFusion, dict(MOE, top_k=1), 5),
    "sparse_top2_wsum": (
        SparseMoEFusion,
        dict(MOE, top_k=2, combine="weighted_sum"),
        5,
    ),
    "sparse_hard": (SparseMoEFusion, dict(MOE, router_grad="none"), 5),
    "sparse_shared": (SparseMoEFusion, dict(MOE, num_shared=1), 5),
    "sparse_top_p": (SparseMoEFusion, dict(MOE, top_p=0.6, max_k=2), 5),
    "sparse_top_p_hard": (
        SparseMoEFusion,
        dict(MOE, top_p=0.6, router_grad="none"),
        5,
    ),
    "sparse_per_task_k": (
        SparseMoEFusion,
        dict(MOE, top_k={"se": 1, "ser": 2}, num_shared=2),
        5,
    ),
    "dense": (DenseMoEFusion, MOE, 5),
    "weighted_sum": (WeightedSumFusion, {}, D),
    "weighted_sum_per_task": (WeightedSumFusion, dict(per_task=True), D),
    "last_layer": (LastLayerFusion, {}, D),
}


def _build(name, tasks=("se", "ser")):
    cls, conf, _ = FUSIONS[name]
    torch.manual_seed(0)
    return cls(L, D, tasks, **conf)


@pytest.mark.parametrize("name", FUSIONS)
def test_shapes_padding_and_backward(name):
    fusion = _build(name)
    torch.manual_seed(1)
    feats = torch.randn(2, 9, L, D, requires_grad=True)
    lengths = torch.tensor([9, 5])
    out = fusion(feats, lengths)
    assert fusion.output_size() == FUSIONS[name][2]
    for task in ("se", "ser"):
        assert out.features[task].shape == (2, 9, fusion.output_size())
        assert out.features[task][1, 5:].abs().sum() == 0
    loss = sum(f.sum() for f in out.features.values()) + sum(
        v for per_task in out.losses.values() for v in per_task.values()
    )
    loss.backward()
    assert feats.grad[1, 5:].abs().sum() == 0  # padding gets no gradient
    assert feats.grad[:, :5].abs().sum() > 0
    # DDP reduces every trainable parameter: each must get a gradient.
    for param_name, p in fusion.named_parameters():
        assert (p.grad is not None) == p.requires_grad, param_name


@pytest.mark.parametrize("name", FUSIONS)
def test_batch_equals_one_by_one(name):
    fusion = _build(name).eval()
    torch.manual_seed(2)
    a, b = torch.randn(1, 9, L, D), torch.randn(1, 6, L, D)
    batch = torch.cat([a, torch.cat([b, torch.randn(1, 3, L, D)], 1)])
    out = fusion(batch, torch.tensor([9, 6]))
    one_a, one_b = fusion(a, torch.tensor([9])), fusion(b, torch.tensor([6]))
    for task in ("se", "ser"):
        torch.testing.assert_close(out.features[task][0], one_a.features[task][0])
        torch.testing.assert_close(out.features[task][1, :6], one_b.features[task][0])


@pytest.mark.parametrize("name", FUSIONS)
def test_a_subset_of_tasks_gets_the_same_features(name):
    fusion = _build(name).eval()
    torch.manual_seed(3)
    feats, lengths = torch.randn(2, 7, L, D), torch.tensor([7, 4])
    both = fusion(feats, lengths)
    ser = fusion(feats, lengths, tasks=["ser"])
    assert list(ser.features) == ["ser"]
    torch.testing.assert_close(ser.features["ser"], both.features["ser"])


def test_weighted_sum_shares_or_separates_weights():
    shared = _build("weighted_sum")
    separate = _build("weighted_sum_per_task")
    assert len(list(shared.weights.parameters())) == 1
    assert len(list(separate.weights.parameters())) == 2
    with torch.no_grad():
        separate.weights["se"].logits[0] = 5.0
    out = separate(torch.randn(1, 3, L, D), torch.tensor([3]))
    assert not torch.allclose(out.features["se"], out.features["ser"])


def test_single_task_fusion():
    fusion = _build("sparse_top1", tasks=("ser",))
    out = fusion(torch.randn(1, 4, L, D), torch.tensor([4]))
    assert set(out.features) == {"ser"} and set(fusion.routers) == {"ser"}


def test_last_layer_picks_the_layer():
    feats = torch.randn(1, 3, L, D)
    fusion = LastLayerFusion(L, D, ("ser",), layer=1)
    torch.testing.assert_close(
        fusion(feats, torch.tensor([3])).features["ser"], feats[:, :, 1]
    )
    with pytest.raises(ValueError):
        LastLayerFusion(L, D, ("ser",), layer=L)
