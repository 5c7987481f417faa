"""Whole-dev-set metrics for model selection, exact across batches and GPUs.

F1-macro and CCC are not means of per-batch values, but they are functions of
sums over utterances. In eval mode each head reports those sums divided by the
batch size (``label_counts``, ``moments``); ESPnet's batch-size-weighted averaging
(across GPUs too) then yields sum / N over the whole set, and ``set_metrics``
(called by ``MeritTrainer`` after each validation pass) turns them into the exact
set-level ``<task>_f1_macro`` / ``<task>_ccc``, usable in
``best_model_criterion``. The model reports routing counts the same way
(``<task>_usage_entropy``, ``<task>_speech_noise_tv``, ...). Each family is one
entry of ``FAMILIES``: statistics -> metric name -> value.
"""

from typing import Callable, Dict

import torch

from espnet2_merit.scoring.routing import routing_metrics
from espnet2_merit.scoring.ser import concordance

PREFIX = "suff:"  # suff:<task>:<family>:<statistic>


def label_counts(logits: torch.Tensor, ref: torch.Tensor) -> Dict[str, torch.Tensor]:
    """(B, C) logits + (B,) classes -> per class true positives, hypothesis and
    reference counts, divided by B."""
    bsz, hyp = logits.size(0), logits.argmax(-1)
    out = {}
    for c in range(logits.size(-1)):
        h, r = hyp == c, ref == c
        out[f"tp{c}"] = (h & r).sum() / bsz
        out[f"hyp{c}"] = h.sum() / bsz
        out[f"ref{c}"] = r.sum() / bsz
    return out


def moments(pred: torch.Tensor, ref: torch.Tensor) -> Dict[str, torch.Tensor]:
    """(B, A) predictions + (B, A) references -> first and second moments per
    column (x: prediction, y: reference), divided by B."""
    x, y = pred.float(), ref.float()
    out = {}
    for name, m in {"x": x, "y": y, "xx": x * x, "yy": y * y, "xy": x * y}.items():
        for a, total in enumerate(m.sum(0)):
            out[f"{name}{a}"] = total / x.size(0)
    return out


def f1_macro(means: Dict[str, float]) -> float:
    """Set means of ``label_counts`` -> F1-macro (a class with neither
    hypothesis nor reference counts 0, as scikit-learn's ``zero_division=0``)."""
    num = sum(1 for k in means if k.startswith("tp"))
    f1 = []
    for c in range(num):
        denom = means[f"hyp{c}"] + means[f"ref{c}"]
        f1.append(2 * means[f"tp{c}"] / denom if denom > 0 else 0.0)
    return sum(f1) / num


def mean_ccc(means: Dict[str, float]) -> float:
    """Set means of ``moments`` -> CCC averaged over the columns."""
    num = sum(1 for k in means if k.startswith("xy"))
    values = []
    for a in range(num):
        mx, my = means[f"x{a}"], means[f"y{a}"]
        vx, vy = means[f"xx{a}"] - mx * mx, means[f"yy{a}"] - my * my
        cov = means[f"xy{a}"] - mx * my
        values.append(concordance(mx, my, vx, vy, cov, eps=1e-12))
    return sum(values) / num


# family -> set means of its statistics -> {metric: value}, reported as
# <task>_<metric>
FAMILIES: Dict[str, Callable[[Dict[str, float]], Dict[str, float]]] = {
    "f1": lambda means: {"f1_macro": f1_macro(means)},
    "ccc": lambda means: {"ccc": mean_ccc(means)},
    "routing": routing_metrics,
}


def pack(
    task: str, stats: Dict[str, Dict[str, torch.Tensor]]
) -> Dict[str, torch.Tensor]:
    """A head's ``{family: {statistic: value}}`` -> flat reporter keys."""
    out = {}
    for family, values in stats.items():
        if family not in FAMILIES:
            raise ValueError(f"unknown model-selection family '{family}'")
        for name, value in values.items():
            out[f"{PREFIX}{task}:{family}:{name}"] = value
    return out


def set_metrics(means: Dict[str, float]) -> Dict[str, float]:
    """Set means of packed statistics -> ``{<task>_<metric>: value}``."""
    grouped: Dict[tuple, Dict[str, float]] = {}
    for key, value in means.items():
        task, family, name = key[len(PREFIX) :].split(":")
        grouped.setdefault((task, family), {})[name] = value
    return {
        f"{task}_{metric}": value
        for (task, family), values in grouped.items()
        for metric, value in FAMILIES[family](values).items()
    }
