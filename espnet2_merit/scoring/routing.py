"""Routing statistics: how evenly a task uses its experts, and whether it routes
speech-dominated frames differently from noise-dominated ones.

A frame is speech-dominated when the clean reference's energy in its samples
exceeds the residual noise's (local SNR > 0 dB). The statistics come from counts
of each frame's first-choice expert, kept apart for the two kinds of frame, so
they are exact over a whole set: the model reports the counts in eval mode
(``espnet2_merit.scoring.selection``, family ``routing``), the scoring stage
from the decoded ``routing/<task>_experts`` files.
"""

import math
from typing import Dict, Optional

import torch


def speech_dominated(
    noisy: torch.Tensor, clean: torch.Tensor, frame_shift: int, num_frames: int
) -> torch.Tensor:
    """(B, N) noisy and clean waveforms (zero padded) -> (B, T) True where frame
    t (samples [t * frame_shift, (t + 1) * frame_shift)) has more speech than
    noise energy."""
    span = num_frames * frame_shift
    noisy, clean = noisy[:, :span].float(), clean[:, :span].float()
    pad = span - noisy.size(1)
    if pad > 0:
        noisy = torch.nn.functional.pad(noisy, (0, pad))
        clean = torch.nn.functional.pad(clean, (0, pad))
    frames = (-1, num_frames, frame_shift)
    speech = clean.pow(2).reshape(frames).sum(-1)
    noise = (noisy - clean).pow(2).reshape(frames).sum(-1)
    return speech > noise


def routing_counts(
    experts: torch.Tensor,
    speech: torch.Tensor,
    num_experts: int,
    chosen: Optional[torch.Tensor] = None,
) -> Dict[str, torch.Tensor]:
    """First-choice expert counts of speech- (``s<e>``) and noise-dominated
    (``n<e>``) frames, divided by the batch size B; with ``chosen``, also the
    number of (frame, expert) choices (``k``), divided by B.

    Args:
        experts: (B, T) first-choice expert per frame, -1 on padding.
        speech: (B, T) from ``speech_dominated``.
        num_experts: E.
        chosen: (B, T) experts each frame was routed to (padding not counted).
    """
    valid = experts >= 0
    out = {}
    if chosen is not None:
        out["k"] = chosen[valid].sum().float() / experts.size(0)
    for prefix, kind in (("s", speech & valid), ("n", ~speech & valid)):
        counts = torch.bincount(experts[kind], minlength=num_experts).float()
        for e in range(num_experts):
            out[f"{prefix}{e}"] = counts[e] / experts.size(0)
    return out


def usage_entropy(share: torch.Tensor) -> torch.Tensor:
    """(E,) shares summing to 1 -> entropy / log E: 1 when uniform, 0 when one
    expert takes every frame."""
    share = share.float()
    h = -(share * share.clamp(min=1e-12).log()).sum()
    return h / math.log(share.numel()) if share.numel() > 1 else h * 0


def routing_metrics(means: Dict[str, float]) -> Dict[str, float]:
    """Set means of ``routing_counts`` -> ``usage_entropy``, ``busiest_share``
    (the largest expert's share of frames), ``speech_noise_tv`` (total variation
    distance between the expert shares of speech- and noise-dominated frames:
    0 = routed alike, 1 = disjoint experts; NaN without both kinds of frame) and
    ``speech_frames`` (their share); with the ``k`` count, ``mean_experts`` (the
    mean number of experts per frame)."""
    num = sum(1 for k in means if k.startswith("s"))
    s = torch.tensor([means[f"s{e}"] for e in range(num)], dtype=torch.float64)
    n = torch.tensor([means[f"n{e}"] for e in range(num)], dtype=torch.float64)
    total = s + n
    if total.sum() <= 0:
        return {}
    share = total / total.sum()
    tv = math.nan
    if s.sum() > 0 and n.sum() > 0:
        tv = float(0.5 * (s / s.sum() - n / n.sum()).abs().sum())
    out = {
        "usage_entropy": float(usage_entropy(share)),
        "busiest_share": float(share.max()),
        "speech_noise_tv": tv,
        "speech_frames": float(s.sum() / total.sum()),
    }
    if "k" in means:
        out["mean_experts"] = float(means["k"] / total.sum())
    return out
