"""Full-dev-set metrics for model selection: batch statistics that ESPnet's
weighted averaging turns into the exact set-level F1-macro and CCC."""

import numpy as np
import pytest
import torch
from espnet2.train.reporter import Reporter
from espnet2.train.trainer import Trainer
from sklearn.metrics import f1_score

from espnet2_merit.scoring import selection
from espnet2_merit.train.trainer import MeritTrainer


def _validate(monkeypatch, batches, family, task="ser"):
    """MeritTrainer.validate_one_epoch over (pred, target) batches, with ESPnet's
    loop replaced by one that registers what the model would report."""

    def loop(cls, model, iterator, reporter, options, distributed_option):
        for pred, target in iterator:
            stats = {"loss": torch.tensor(1.0)}
            fn = selection.label_counts if family == "f1" else selection.moments
            stats.update(selection.pack(task, {family: fn(pred, target)}))
            reporter.register(stats, pred.size(0))
            reporter.next()

    monkeypatch.setattr(Trainer, "validate_one_epoch", classmethod(loop))
    reporter = Reporter()
    reporter.set_epoch(1)
    with reporter.observe("valid") as sub:
        MeritTrainer.validate_one_epoch(
            model=None, iterator=batches, reporter=sub, options=None,
            distributed_option=None,
        )  # fmt: skip
    return reporter


def test_f1_macro_over_the_whole_set_equals_sklearn(monkeypatch):
    rng = np.random.default_rng(0)
    sizes = [7, 3, 8, 1, 5]  # unequal batches: a mean of batch F1s would differ
    batches = [
        (
            torch.from_numpy(rng.standard_normal((n, 4))),
            torch.from_numpy(rng.integers(0, 4, n)),
        )  # noqa: E501
        for n in sizes
    ]
    reporter = _validate(monkeypatch, batches, "f1")
    hyp = torch.cat([p.argmax(-1) for p, _ in batches]).numpy()
    ref = torch.cat([t for _, t in batches]).numpy()
    expected = f1_score(ref, hyp, labels=range(4), average="macro", zero_division=0)
    got = reporter.get_value("valid", "ser_f1_macro")
    assert got == pytest.approx(expected, abs=1e-6)  # float32 statistics
    batch_mean = np.mean(
        [
            f1_score(t, p.argmax(-1), labels=range(4), average="macro", zero_division=0)
            for p, t in batches
        ]
    )  # noqa: E501
    assert abs(batch_mean - expected) > 1e-3  # the test can tell the two apart
    # The raw statistics are not reported; the other stats are intact.
    assert not [
        k for k in reporter.get_keys2("valid") if k.startswith(selection.PREFIX)
    ]
    assert reporter.get_value("valid", "loss") == pytest.approx(1.0)


def test_ccc_over_the_whole_set(monkeypatch):
    rng = np.random.default_rng(1)
    batches = []
    for n in (6, 2, 9):
        y = rng.standard_normal((n, 3))
        batches.append(
            (
                torch.from_numpy(0.7 * y + 0.3 * rng.standard_normal((n, 3)) + 0.2),
                torch.from_numpy(y),
            )
        )  # noqa: E501
    reporter = _validate(monkeypatch, batches, "ccc", "attr")
    x = torch.cat([p for p, _ in batches]).numpy()
    y = torch.cat([t for _, t in batches]).numpy()
    ccc = [
        2
        * np.cov(x[:, a], y[:, a], bias=True)[0, 1]
        / (x[:, a].var() + y[:, a].var() + (x[:, a].mean() - y[:, a].mean()) ** 2)
        for a in range(3)
    ]
    assert reporter.get_value("valid", "attr_ccc") == pytest.approx(
        np.mean(ccc), abs=1e-6
    )
