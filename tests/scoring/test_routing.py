"""Routing statistics on hand-made examples."""

import math

import pytest
import torch

from espnet2_merit.scoring import routing, selection


def test_speech_dominated_frames():
    clean = torch.tensor([[1.0, 1.0, 0.0, 0.0, 2.0, 0.0]])
    noise = torch.tensor([[0.1, 0.1, 0.5, 0.5, 0.0, 0.0]])
    got = routing.speech_dominated(clean + noise, clean, frame_shift=2, num_frames=4)
    assert got.tolist() == [[True, False, True, False]]  # the 4th frame is padding


def test_counts_and_metrics():
    experts = torch.tensor([[0, 0, 1, 1], [0, 2, -1, -1]])
    speech = torch.tensor([[True, True, False, False], [True, False, False, False]])
    counts = routing.routing_counts(experts, speech, num_experts=3)
    # speech frames: 0, 0, 0; noise frames: 1, 1, 2 (padding left out)
    assert [float(counts[f"s{e}"]) for e in range(3)] == [1.5, 0.0, 0.0]
    assert [float(counts[f"n{e}"]) for e in range(3)] == [0.0, 1.0, 0.5]
    got = routing.routing_metrics({k: float(v) for k, v in counts.items()})
    share = torch.tensor([3, 2, 1]) / 6
    entropy = -(share * share.log()).sum() / math.log(3)
    assert got["usage_entropy"] == pytest.approx(float(entropy))
    assert got["busiest_share"] == pytest.approx(0.5)
    assert got["speech_noise_tv"] == pytest.approx(1.0)  # disjoint experts
    assert got["speech_frames"] == pytest.approx(0.5)


def test_uniform_entropy_is_one_and_collapse_zero():
    assert float(routing.usage_entropy(torch.ones(4) / 4)) == pytest.approx(1.0)
    assert float(routing.usage_entropy(torch.tensor([1.0, 0, 0]))) == pytest.approx(0.0)


def test_no_noise_frames_leave_the_difference_undefined():
    means = {"s0": 1.0, "s1": 1.0, "n0": 0.0, "n1": 0.0}
    assert math.isnan(routing.routing_metrics(means)["speech_noise_tv"])
    packed = selection.pack(
        "ser", {"routing": {k: torch.tensor(v) for k, v in means.items()}}
    )
    metrics = selection.set_metrics({k: float(v) for k, v in packed.items()})
    assert metrics["ser_usage_entropy"] == pytest.approx(1.0)


def test_mean_experts_per_frame_counts_valid_frames_only():
    experts = torch.tensor([[0, 0, 1, 1], [0, 2, -1, -1]])
    speech = torch.tensor([[True, True, False, False], [True, False, False, False]])
    chosen = torch.tensor([[1, 2, 1, 3], [2, 1, 0, 0]])  # 10 choices, 6 frames
    counts = routing.routing_counts(experts, speech, num_experts=3, chosen=chosen)
    assert float(counts["k"]) == pytest.approx(10 / 2)
    got = routing.routing_metrics({k: float(v) for k, v in counts.items()})
    assert got["mean_experts"] == pytest.approx(10 / 6)
    assert got["usage_entropy"] == pytest.approx(  # first choices as before
        routing.routing_metrics(
            {k: float(v) for k, v in routing.routing_counts(experts, speech, 3).items()}
        )["usage_entropy"]
    )
    assert "mean_experts" not in routing.routing_metrics(
        {k: float(v) for k, v in routing.routing_counts(experts, speech, 3).items()}
    )


def test_results_show_experts_per_frame(tmp_path):
    from espnet2_merit.scoring.results import _usage_section

    decode = tmp_path / "decode"
    (decode / "t_seen_snr0" / "routing").mkdir(parents=True)
    (decode / "t_seen_snr0" / "routing" / "ser_usage").write_text("u1 0.5 0.5 0\n")
    summaries = {"t_seen_snr0": {"routing": {"ser": {"mean_experts": 1.75}}}}
    text = _usage_section(
        tmp_path, decode, {("t", "seen"): [(0.0, "t_seen_snr0")]}, summaries
    )
    header = next(line for line in text.splitlines() if line.startswith("| SNR"))
    row = next(line for line in text.splitlines() if line.startswith("| 0 "))
    assert "experts/frame" in header and "1.750" in row


def test_route_grid_leaves_unused_slots_out():
    import numpy as np

    from espnet2_merit.scoring.plots import route_grid

    experts = np.array([[0, -1], [1, 2]])  # frame 0 uses one expert (top-p)
    gates = np.array([[0.9, 0.0], [0.6, 0.4]])
    np.testing.assert_allclose(
        route_grid(experts, gates, 3), [[0.9, 0.0], [0.0, 0.6], [0.0, 0.4]]
    )
