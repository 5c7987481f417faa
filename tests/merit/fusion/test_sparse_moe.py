"""Routing of SparseMoEFusion: sparsity, sharing, gradients, balancing, padding."""

import pytest
import torch

from espnet2_merit.merit.fusion.dense_moe import DenseMoEFusion
from espnet2_merit.merit.fusion.sparse_moe import (
    SparseMoEFusion,
    experts_per_frame,
    switch_balance_loss,
)

L, D = 3, 8


def _fusion(tasks=("se", "ser"), **kw):
    torch.manual_seed(0)
    conf = dict(num_experts=4, hidden_size=16, output_size=5)
    if "top_p" not in kw:
        conf["top_k"] = 1
    return SparseMoEFusion(L, D, tasks, **{**conf, **kw})


def _count_rows(fusion):
    """Rows each expert's first layer processes, via forward hooks."""
    rows = [0] * len(fusion.experts)

    def hook(i):
        def fn(module, inputs, output):
            rows[i] += inputs[0].shape[0]

        return fn

    for i, expert in enumerate(fusion.experts):
        expert[0].register_forward_hook(hook(i))
    return rows


def _inputs(lengths=(7, 4)):
    torch.manual_seed(1)
    return torch.randn(len(lengths), max(lengths), L, D), torch.tensor(lengths)


@pytest.mark.parametrize("top_k", [1, 2])
def test_only_k_experts_run_per_frame(top_k):
    fusion = _fusion(tasks=("ser",), top_k=top_k)
    rows = _count_rows(fusion)
    feats, lengths = _inputs()
    fusion(feats, lengths)
    assert sum(rows) == top_k * int(lengths.sum())


def test_frame_chosen_by_both_tasks_runs_once():
    fusion = _fusion()
    fusion.routers["se"].load_state_dict(fusion.routers["ser"].state_dict())
    rows = _count_rows(fusion)
    feats, lengths = _inputs()
    out = fusion(feats, lengths)
    assert torch.equal(out.routes["se"][0], out.routes["ser"][0])
    assert sum(rows) == int(lengths.sum())  # not 2x


def test_rows_equal_distinct_pairs():
    fusion = _fusion(top_k=2)
    rows = _count_rows(fusion)
    feats, lengths = _inputs()
    out = fusion(feats, lengths)
    pairs = set()
    for experts, _ in out.routes.values():
        for b, t, k in (experts >= 0).nonzero().tolist():
            pairs.add((b, t, int(experts[b, t, k])))
    assert sum(rows) == len(pairs)
    for e in range(4):
        assert rows[e] == sum(1 for p in pairs if p[2] == e)


@pytest.mark.parametrize(
    "kw",
    [
        dict(top_k=1),
        dict(top_k=2),
        dict(top_p=0.5, max_k=3),
        dict(top_k={"se": 1, "ser": 3}, num_shared=2),
    ],
)
def test_output_equals_dense_reference(kw):
    fusion = _fusion(**kw)
    feats, lengths = _inputs()
    out = fusion(feats, lengths)
    x = fusion.norm(feats).flatten(2)
    all_out = torch.stack([e(x) for e in fusion.experts], dim=2)  # (B, T, E, O)
    shared = sum((e(x) for e in fusion.shared_experts), torch.zeros(1))
    for task, (experts, gates) in out.routes.items():
        for b, n in enumerate(lengths.tolist()):
            for t in range(n):
                ref = shared[b, t] if fusion.shared_experts else 0
                for j in range(experts.size(-1)):
                    if experts[b, t, j] >= 0:
                        ref = ref + gates[b, t, j] * all_out[b, t, experts[b, t, j]]
                torch.testing.assert_close(out.features[task][b, t], ref)
            assert out.features[task][b, n:].abs().sum() == 0


def test_gates_are_router_probabilities_or_renormalised():
    feats, lengths = _inputs()
    top1 = _fusion(top_k=1)
    out = top1(feats, lengths)
    x = top1.norm(feats).flatten(2)
    probs = top1.routers["ser"](x).softmax(-1)
    experts, gates = out.routes["ser"]
    valid = experts[..., 0] >= 0
    chosen = probs.gather(-1, experts.clamp(min=0))[valid]
    torch.testing.assert_close(gates[valid], chosen)
    _, gates2 = _fusion(top_k=2)(feats, lengths).routes["ser"]
    torch.testing.assert_close(gates2[valid].sum(-1), torch.ones(int(valid.sum())))


def test_router_learns_from_task_features():
    fusion = _fusion()
    feats, lengths = _inputs()
    out = fusion(feats, lengths)
    (out.features["se"].pow(2).sum() + out.features["ser"].sum()).backward()
    for task in ("se", "ser"):
        grad = fusion.routers[task].weight.grad
        assert grad is not None and grad.abs().sum() > 0


def test_router_grad_none_gives_routers_nothing():
    fusion = _fusion(router_grad="none")
    feats, lengths = _inputs()
    out = fusion(feats, lengths)
    assert out.losses == {}
    (out.features["se"].pow(2).sum() + out.features["ser"].sum()).backward()
    for task in ("se", "ser"):
        assert fusion.routers[task].weight.grad is None
    assert not any(p.requires_grad for p in fusion.routers.parameters())
    assert any(e[0].weight.grad is not None for e in fusion.experts)


def test_an_expert_without_frames_gets_a_zero_gradient():
    """Under DDP every rank must reduce every expert's gradient, also on a batch
    that routes no frame to it."""
    fusion = _fusion()
    with torch.no_grad():
        for router in fusion.routers.values():
            router.bias.copy_(torch.tensor([50.0, 0.0, 0.0, 0.0]))
    rows = _count_rows(fusion)
    out = fusion(*_inputs())
    (out.features["se"].sum() + out.features["ser"].sum()).backward()
    assert rows[1:] == [0, 0, 0]
    for expert in fusion.experts[1:]:
        assert all(
            p.grad is not None and p.grad.abs().sum() == 0 for p in expert.parameters()
        )
    assert fusion.experts[0][0].weight.grad.abs().sum() > 0


def test_balance_loss_hand_made_example():
    # 4 frames, 2 experts: expert 0 chosen 3 times, expert 1 once.
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8]])
    experts = torch.tensor([[0], [0], [0], [1]])
    f = torch.tensor([3 / 4, 1 / 4])
    p = torch.tensor([(0.9 + 0.6 + 0.7 + 0.2) / 4, (0.1 + 0.4 + 0.3 + 0.8) / 4])
    expected = 2 * (f * p).sum()  # = 2 * (0.75*0.6 + 0.25*0.4) = 1.1
    assert float(expected) == pytest.approx(1.1)
    assert float(switch_balance_loss(probs, experts)) == pytest.approx(1.1)


def test_balance_loss_is_one_when_uniform():
    probs = torch.full((6, 3), 1 / 3)
    experts = torch.tensor([[0], [1], [2], [0], [1], [2]])
    assert float(switch_balance_loss(probs, experts)) == pytest.approx(1.0)


def test_padding_frames_change_nothing():
    fusion = _fusion()
    feats, lengths = _inputs(lengths=(5,))
    padded = torch.cat([feats, 100 * torch.randn(1, 6, L, D)], dim=1)
    a, b = fusion(feats, lengths), fusion(padded, lengths)
    for task in ("se", "ser"):
        torch.testing.assert_close(b.features[task][:, :5], a.features[task])
        assert b.features[task][:, 5:].abs().sum() == 0
        torch.testing.assert_close(b.usage[task], a.usage[task])
        assert (b.routes[task][0][:, 5:] == -1).all()
        assert (b.routes[task][1][:, 5:] == 0).all()
    assert set(a.losses) == {"balance_loss", "z_loss"}
    for name in a.losses:
        assert set(a.losses[name]) == {"se", "ser"}
        torch.testing.assert_close(b.losses[name], a.losses[name])


def test_dense_moe_is_softmax_mix_of_all_experts():
    torch.manual_seed(0)
    fusion = DenseMoEFusion(
        L, D, ("se", "ser"), num_experts=3, hidden_size=16, output_size=5
    )
    rows = _count_rows(fusion)
    feats, lengths = _inputs()
    out = fusion(feats, lengths)
    assert rows == [int(lengths.sum())] * 3  # each expert once per frame
    x = fusion.norm(feats).flatten(2)
    all_out = torch.stack([e(x) for e in fusion.experts], dim=2)
    for task in ("se", "ser"):
        probs = fusion.routers[task](x).softmax(-1)
        ref = (probs[..., None] * all_out).sum(2)
        for b, n in enumerate(lengths.tolist()):
            torch.testing.assert_close(out.features[task][b, :n], ref[b, :n])
        torch.testing.assert_close(out.usage[task].sum(), torch.tensor(1.0))


def test_weighted_sum_combine_uses_layer_sized_input():
    fusion = _fusion(combine="weighted_sum")
    assert fusion.experts[0][0].in_features == D
    feats, lengths = _inputs()
    out = fusion(feats, lengths)
    out.features["ser"].sum().backward()
    assert fusion.combine.logits.grad is not None


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(top_k=5), r"top_k=5 \(task 'se'\) must be in \[1, num_experts=4\]"),
        (dict(top_k=0), r"top_k=0"),
        (dict(top_k={"se": 1}), r"missing \['ser'\]"),
        (dict(top_k={"se": 1, "ser": 1, "asr": 2}), r"unknown \['asr'\]"),
        (dict(top_k={"se": 1, "ser": 9}), r"top_k=9 \(task 'ser'\)"),
        (dict(top_k=2, top_p=0.5), "exclude each other"),
        (dict(max_k=2), "max_k caps top_p"),
        (dict(top_p=0.0), r"top_p=0.0 \(task 'se'\) must be in \(0, 1\]"),
        (dict(top_p={"se": 0.5, "ser": 1.5}), r"top_p=1.5 \(task 'ser'\)"),
        (dict(top_p={"ser": 0.5}), r"top_p: .*missing \['se'\]"),
        (dict(top_p=0.5, max_k=5), r"max_k=5 must be in"),
        (dict(num_shared=-1), "num_shared=-1"),
        (dict(combine="sum"), "combine='sum'"),
        (dict(router_grad="straight"), "router_grad='straight'"),
    ],
)
def test_bad_settings_are_clear_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        _fusion(**kw)


def test_only_the_needed_tasks_experts_run():
    """Emotion-only inference skips the SE task's experts; both are still routed."""
    fusion = _fusion()
    feats, lengths = _inputs()
    both = fusion(feats, lengths)
    rows = _count_rows(fusion)
    out = fusion(feats, lengths, tasks=["ser"])
    assert list(out.features) == ["ser"] and set(out.routes) == {"se", "ser"}
    torch.testing.assert_close(out.features["ser"], both.features["ser"])
    assert sum(rows) == int(lengths.sum())  # the SER task's top-1 pairs only
    assert fusion(feats, lengths, tasks=[]).features == {}
    with pytest.raises(ValueError, match=r"tasks \['asr'\] are not among"):
        fusion(feats, lengths, tasks=["asr"])


def _set_routers(fusion, bias):
    """Routers that ignore the frame: every frame gets softmax(bias)."""
    with torch.no_grad():
        for router in fusion.routers.values():
            router.weight.zero_()
            router.bias.copy_(torch.tensor(bias))


@pytest.mark.parametrize(
    "bias, max_k, count",
    [
        ([50.0, 0.0, 0.0, 0.0], 4, 1),  # peaked: one expert has all the mass
        ([0.0, 0.0, 0.0, 0.0], 4, 3),  # flat: 0.25 + 0.25 < 0.6 <= 0.75
        ([0.0, 0.0, 0.0, 0.0], 2, 2),  # flat, capped by max_k
    ],
)
def test_top_p_uses_few_experts_on_easy_frames_and_more_on_hard(bias, max_k, count):
    fusion = _fusion(top_p=0.6, max_k=max_k)
    _set_routers(fusion, bias)
    rows = _count_rows(fusion)
    feats, lengths = _inputs()
    out = fusion(feats, lengths)
    num = experts_per_frame(out.routes["ser"][0])
    valid = torch.arange(feats.size(1))[None] < lengths[:, None]
    assert (num[valid] == count).all() and (num[~valid] == 0).all()
    assert out.routes["ser"][0].size(-1) == max_k  # unused slots: -1 and gate 0
    # both tasks route alike, so only the distinct pairs run: count per frame
    assert sum(rows) == count * int(lengths.sum())


def test_top_p_keeps_the_smallest_prefix_reaching_p_and_at_most_max_k():
    fusion = _fusion(top_p=0.7, max_k=3)
    with torch.no_grad():
        for router in fusion.routers.values():
            router.weight.mul_(3)  # 1, 2 and 3 experts
    feats, lengths = _inputs()
    tokens = fusion.tokens(feats, lengths)
    for r in fusion.route(tokens).values():
        num = experts_per_frame(r.experts)
        assert num.min() >= 1 and num.max() <= 3
        assert len(set(num.tolist())) > 1  # the count varies per frame
        mass = r.probs.gather(-1, r.experts.clamp(min=0)).masked_fill(
            r.experts < 0, 0.0
        )
        kept = mass.sum(-1)
        without_last = kept - mass.gather(-1, (num - 1)[:, None])[:, 0]
        assert ((kept >= 0.7 - 1e-6) | (num == 3)).all()  # reaches p unless capped
        assert (without_last < 0.7).all()  # and no shorter prefix would
        # chosen experts are the most probable ones, in order
        top = r.probs.sort(-1, descending=True).indices[:, :3]
        used = r.experts >= 0
        assert torch.equal(r.experts[used], top[used])
        # one expert: its raw probability (the router learns); several: sum to 1
        single = num == 1
        torch.testing.assert_close(r.gates[single, 0], mass[single, 0])
        torch.testing.assert_close(
            r.gates[~single].sum(-1), torch.ones(int((~single).sum()))
        )
        assert (r.gates[~used] == 0).all()


def test_per_task_top_k():
    fusion = _fusion(top_k={"se": 1, "ser": 3})
    rows = _count_rows(fusion)
    feats, lengths = _inputs()
    out = fusion(feats, lengths)
    valid = int(lengths.sum())
    for task, k in (("se", 1), ("ser", 3)):
        experts = out.routes[task][0]
        assert experts.size(-1) == k
        assert (experts_per_frame(experts).sum()) == k * valid
    se_only = _fusion(top_k={"se": 1, "ser": 3})
    se_rows = _count_rows(se_only)
    se_only(feats, lengths, tasks=["se"])
    assert sum(se_rows) == valid  # the SE task's k alone decides what runs
    assert sum(rows) <= 4 * valid and sum(rows) >= 3 * valid


def test_shared_experts_run_once_on_every_valid_frame():
    fusion = _fusion(num_shared=2)
    assert len(fusion.shared_experts) == 2 and len(fusion.experts) == 4
    shared_rows = [0, 0]
    for i, expert in enumerate(fusion.shared_experts):
        expert[0].register_forward_hook(
            lambda m, inp, o, i=i: shared_rows.__setitem__(
                i, shared_rows[i] + inp[0].shape[0]
            )
        )
    feats, lengths = _inputs()
    out = fusion(feats, lengths)
    assert shared_rows == [int(lengths.sum())] * 2  # valid frames, once for 2 tasks
    (out.features["se"].sum() + out.features["ser"].sum()).backward()
    for expert in fusion.shared_experts:
        assert expert[0].weight.grad.abs().sum() > 0
    # the shared part is the same for every task: the routed part differs
    plain = _fusion()
    plain.load_state_dict(fusion.state_dict(), strict=False)
    base = plain(feats, lengths)
    diff_se = out.features["se"] - base.features["se"]
    diff_ser = out.features["ser"] - base.features["ser"]
    torch.testing.assert_close(diff_se, diff_ser)
    assert diff_se[0, 0].abs().sum() > 0


def test_balance_loss_counts_variable_choices():
    # 3 frames, 2 experts; 4 choices in all: expert 0 twice, expert 1 twice.
    probs = torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    experts = torch.tensor([[0, -1], [0, 1], [1, -1]])
    p = torch.tensor([1.6 / 3, 1.4 / 3])
    expected = 2 * (torch.tensor([0.5, 0.5]) * p).sum()
    assert float(switch_balance_loss(probs, experts)) == pytest.approx(float(expected))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_balance_loss_with_fixed_k_is_the_usual_one(k):
    torch.manual_seed(k)
    probs = torch.randn(20, 4).softmax(-1)
    experts = probs.topk(k, -1).indices
    counts = torch.stack([(experts == e).sum() for e in range(4)]).float()
    usual = 4 * (counts / (20 * k) * probs.mean(0)).sum()
    torch.testing.assert_close(switch_balance_loss(probs, experts), usual)
    # a top-p routing that happens to pick k everywhere gives the same value
    fusion = _fusion(top_p=1.0, max_k=k)
    r = fusion.choose(probs, fusion.rules["ser"])
    torch.testing.assert_close(switch_balance_loss(probs, r[0]), usual)


def test_usage_counts_each_choice_of_a_variable_routing():
    fusion = _fusion(top_p=0.6, max_k=4)
    _set_routers(fusion, [1.0, 0.9, -50.0, -50.0])  # 0.52 + 0.48: 2 chosen
    out = fusion(*_inputs())
    torch.testing.assert_close(out.usage["ser"], torch.tensor([0.5, 0.5, 0, 0]))


@pytest.mark.parametrize("kw", [dict(top_p=0.6, max_k=3), dict(num_shared=1)])
def test_traced_dispatch_gives_the_grouped_result(kw, monkeypatch):
    """Export computes every expert and gathers the chosen ones: unused top-p
    slots and the shared experts must give what the grouped dispatch gives."""
    fusion = _fusion(**kw)
    feats, lengths = _inputs()
    tokens = fusion.tokens(feats, lengths)
    routing = fusion.route(tokens)
    grouped = fusion.dispatch(tokens, routing)
    monkeypatch.setattr(torch.jit, "is_tracing", lambda: True)
    traced = fusion.dispatch(tokens, routing)
    for task in ("se", "ser"):
        torch.testing.assert_close(traced[task], grouped[task])
