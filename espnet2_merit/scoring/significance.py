"""Paired significance tests between two systems scored on the same utterances.

* SER (F1-macro and the other count-based scores, the ICBHI scores among them):
  **approximate randomization** (Noreen 1989; Riezler & Maxwell 2005). Under the null
  hypothesis the two systems are exchangeable, so each utterance's pair of predictions
  is swapped with probability 1/2; the p-value is the share of shuffles whose absolute
  score difference reaches the observed one (two-sided). 10,000 seeded rounds by
  default, with the ``(count + 1) / (rounds + 1)`` estimate; when the utterances on
  which the systems disagree allow no more than ``rounds`` distinct shuffles, all of
  them are enumerated instead and the p-value is exact. Corpus-level scores such as
  F1-macro do not decompose over utterances, which is why a resampling test (not a
  per-utterance test) is used.
* SE (per-utterance SSNR, PESQ, STOI, SI-SDR): the **Wilcoxon signed-rank test**
  (two-sided, scipy; zero differences dropped, "wilcox"; exact distribution for
  small samples without ties, normal approximation otherwise). It does not
  assume normally distributed differences, which PESQ and SSNR are not.
"""

import logging
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from espnet2_merit.errors import MeritInputError
from espnet2_merit.scoring.ser import ICBHI_NAMES, encode_labels, icbhi_from_counts

logger = logging.getLogger(__name__)

COUNT_STATISTICS = (
    "f1_macro",
    "f1_micro",
    "accuracy",
    "precision_macro",
    "recall_macro",
    *ICBHI_NAMES,
)


@dataclass
class PairedTest:
    """Result of a paired test of system A against system B.

    Attributes:
        difference: Score of A minus score of B (SER), or the mean per-utterance
            difference A - B (SE).
        p_value: Two-sided p-value.
        num_utts: Utterances used.
        method: The test, in words.
        excluded: Utterances left out (SE: a NaN score in either system).
    """

    difference: float
    p_value: float
    num_utts: int
    method: str
    excluded: int = 0


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (scikit-learn's zero_division=0)."""
    return np.divide(
        num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0
    )


def count_statistic(
    name: str,
    tp: np.ndarray,
    pred: np.ndarray,
    support: np.ndarray,
    classes: Optional[Sequence[str]] = None,
) -> np.ndarray:
    """A classification score from per-class counts, vectorised over rounds.

    Args:
        name: One of ``COUNT_STATISTICS``.
        tp: (..., C) true positives per class.
        pred: (..., C) predictions per class.
        support: (C,) references per class.
        classes: (C,) the class list (the ICBHI scores need it: their normal
            class is named).

    Returns:
        (...,) scores.
    """
    if name in ("f1_micro", "accuracy"):  # every label is in the class list
        return tp.sum(-1) / support.sum()
    if name == "f1_macro":
        return _ratio(2 * tp, pred + support).mean(-1)
    if name == "precision_macro":
        return _ratio(tp, pred).mean(-1)
    if name == "recall_macro":
        return _ratio(tp, np.broadcast_to(support, tp.shape)).mean(-1)
    if name in ICBHI_NAMES:
        if classes is None:
            raise ValueError(f"statistic '{name}' needs the class list")
        return icbhi_from_counts(tp, support, classes)[name]
    raise ValueError(f"unknown statistic '{name}', expected one of {COUNT_STATISTICS}")


def paired_randomization_test(
    ref: Sequence[str],
    hyp_a: Sequence[str],
    hyp_b: Sequence[str],
    classes: Sequence[str],
    statistic: str = "f1_macro",
    rounds: int = 10000,
    seed: int = 0,
    exact: Optional[bool] = None,
    batch: int = 1000,
) -> PairedTest:
    """Approximate randomization test of a classification score (two-sided).

    Only utterances where the systems disagree change under a swap, so the
    shuffled scores are the observed counts plus ``mask @ change`` matrix
    products over those utterances: 10,000 rounds over 10,000 utterances take
    well under a second.

    Args:
        ref: (N,) reference labels.
        hyp_a: (N,) predictions of system A.
        hyp_b: (N,) predictions of system B, same utterance order.
        classes: (C,) the class list.
        statistic: One of ``COUNT_STATISTICS``.
        rounds: Random shuffles.
        seed: Seed of the shuffles.
        exact: Enumerate all 2**D shuffles (D: disagreeing utterances). Default:
            when 2**D <= rounds.
        batch: Shuffles per matrix product (memory: batch x D).
    """
    if not len(ref) == len(hyp_a) == len(hyp_b):
        raise MeritInputError(
            f"paired test needs equal lengths: {len(ref)} references, "
            f"{len(hyp_a)} and {len(hyp_b)} predictions"
        )
    if not len(ref):
        raise MeritInputError("paired test of no utterances")
    num_classes = len(classes)
    r = encode_labels(ref, classes, "reference")
    a = encode_labels(hyp_a, classes, "system A")
    b = encode_labels(hyp_b, classes, "system B")
    eye = np.eye(num_classes)
    support = eye[r].sum(0)

    def counts(h):
        return (eye[h] * (h == r)[:, None]).sum(0), eye[h].sum(0)

    (tp_a, pred_a), (tp_b, pred_b) = counts(a), counts(b)
    observed = float(
        count_statistic(statistic, tp_a, pred_a, support, classes)
        - count_statistic(statistic, tp_b, pred_b, support, classes)
    )
    d = np.flatnonzero(a != b)
    if not len(d):
        return PairedTest(0.0, 1.0, len(r), "approximate randomization (identical)")
    # Change of A's counts when utterance i takes B's prediction (B's is opposite).
    hit_a, hit_b = (a[d] == r[d])[:, None], (b[d] == r[d])[:, None]
    d_pred = eye[b[d]] - eye[a[d]]
    d_tp = eye[b[d]] * hit_b - eye[a[d]] * hit_a

    if exact is None:
        exact = len(d) < 63 and 2 ** len(d) <= rounds
    if exact:
        if len(d) > 24:
            raise ValueError(f"exact test of {len(d)} disagreements is too large")
        total = 2 ** len(d)
        bits = np.arange(len(d))

        def masks(start, n):
            return ((np.arange(start, start + n)[:, None] >> bits) & 1).astype(float)

    else:
        total = rounds
        rng = np.random.default_rng(seed)

        def masks(start, n):
            return rng.integers(0, 2, size=(n, len(d))).astype(float)

    tol = 1e-12 * max(1.0, abs(observed))  # equal scores must count as "as extreme"
    hits = 0
    for start in range(0, total, batch):
        m = masks(start, min(batch, total - start))
        dp, dt = m @ d_pred, m @ d_tp
        diff = count_statistic(
            statistic, tp_a + dt, pred_a + dp, support, classes
        ) - count_statistic(statistic, tp_b - dt, pred_b - dp, support, classes)
        hits += int((np.abs(diff) >= abs(observed) - tol).sum())
    if exact:
        p, method = hits / total, f"exact randomization ({total} shuffles)"
    else:
        p = (hits + 1) / (rounds + 1)
        method = f"approximate randomization ({rounds} rounds, seed {seed})"
    return PairedTest(observed, float(p), len(r), method)


def paired_wilcoxon(
    x: Sequence[float], y: Sequence[float], what: str = "scores"
) -> PairedTest:
    """Two-sided Wilcoxon signed-rank test of per-utterance scores x (system A)
    against y (system B).

    Pairs with a NaN (e.g. a PESQ failure) are left out, counted and logged.
    Zero differences are dropped ("wilcox"); if no difference is left, p = 1.

    Args:
        x: (N,) scores of system A.
        y: (N,) scores of system B, same utterance order.
        what: Name for messages.
    """
    from scipy.stats import wilcoxon  # slow import

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise MeritInputError(f"{what}: paired scores of shapes {x.shape}, {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    excluded = int((~keep).sum())
    if excluded:
        logger.warning(f"{what}: {excluded} utterance pairs with NaN/Inf left out")
    x, y = x[keep], y[keep]
    method = "Wilcoxon signed-rank (two-sided)"
    if not len(x):
        return PairedTest(float("nan"), float("nan"), 0, method, excluded)
    diff = x - y
    if not np.any(diff != 0):
        return PairedTest(0.0, 1.0, len(x), method, excluded)
    res = wilcoxon(x, y, zero_method="wilcox", alternative="two-sided")
    return PairedTest(float(diff.mean()), float(res.pvalue), len(x), method, excluded)
