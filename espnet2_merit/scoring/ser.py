"""Speech-emotion-recognition metrics: classification scores from labels, and the
concordance correlation coefficient (CCC) for emotional attributes."""

import logging
from typing import Dict, List, Optional, Sequence

import numpy as np

from espnet2_merit.errors import MeritInputError

logger = logging.getLogger(__name__)


def encode_labels(
    labels: Sequence[str], classes: Sequence[str], what: str = "labels"
) -> np.ndarray:
    """Class indices (N,) of ``labels``; a label outside ``classes`` is an error."""
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({lab for lab in labels if lab not in index})
    if unknown:
        raise MeritInputError(
            f"{what}: labels {unknown} are not in the class list {list(classes)}"
        )
    return np.array([index[lab] for lab in labels], dtype=np.int64)


def classification_metrics(
    ref: Sequence[str], hyp: Sequence[str], classes: Sequence[str]
) -> Dict:
    """Scores of predicted emotion classes against the references (scikit-learn).

    Every class in ``classes`` counts in the macro averages, in list order, even if
    it never occurs (then its F1 is 0 and a warning is logged): the class list is
    the task definition, not what a test set happens to contain.

    Args:
        ref: (N,) reference labels.
        hyp: (N,) predicted labels.
        classes: (C,) the class list.

    Returns:
        A JSON-ready dict: ``f1_macro``, ``f1_micro``, ``accuracy``,
        ``precision_macro``, ``recall_macro`` (floats), ``f1_per_class``,
        ``precision_per_class``, ``recall_per_class``, ``support`` (dicts by class),
        ``confusion_matrix`` (C x C list, rows reference, columns prediction),
        ``classes`` and ``num_utts``.
    """
    # Imported here: scikit-learn takes seconds to import, and scoring of SE-only
    # sets, RESULTS.md and comparisons do not need it.
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    if len(ref) != len(hyp):
        raise MeritInputError(f"{len(ref)} references but {len(hyp)} predictions")
    if not len(ref):
        raise MeritInputError("no utterances to score")
    classes = list(classes)
    encode_labels(ref, classes, "reference")
    encode_labels(hyp, classes, "hypothesis")
    absent = [c for c in classes if c not in set(ref)]
    if absent:
        logger.warning(f"classes {absent} have no reference utterance: F1 0 each")
    kw = dict(labels=classes, zero_division=0)
    p, r, f, s = precision_recall_fscore_support(ref, hyp, **kw)
    return {
        "num_utts": len(ref),
        "classes": classes,
        "f1_macro": float(f1_score(ref, hyp, average="macro", **kw)),
        "f1_micro": float(f1_score(ref, hyp, average="micro", **kw)),
        "accuracy": float(accuracy_score(ref, hyp)),
        "precision_macro": float(np.mean(p)),
        "recall_macro": float(np.mean(r)),
        "f1_per_class": dict(zip(classes, map(float, f))),
        "precision_per_class": dict(zip(classes, map(float, p))),
        "recall_per_class": dict(zip(classes, map(float, r))),
        "support": dict(zip(classes, map(int, s))),
        "confusion_matrix": confusion_matrix(ref, hyp, labels=classes).tolist(),
    }


def concordance(mx, my, vx, vy, cov, eps: float = 0.0):
    """The concordance correlation coefficient from first and second moments:
    ``2 cov / (vx + vy + (mx - my)**2 + eps)`` (population variances).

    The one CCC formula of the package: the CCC loss (torch tensors, over a
    batch), the whole-dev-set model selection (from summed moments) and the
    scoring of attributes (numpy) all call it.
    """
    return 2 * cov / (vx + vy + (mx - my) ** 2 + eps)


def ccc(ref: np.ndarray, hyp: np.ndarray) -> float:
    """CCC of two (N,) series with population (1/N) moments; 1 is perfect
    agreement, NaN when both are constant and equal."""
    ref, hyp = np.asarray(ref, np.float64), np.asarray(hyp, np.float64)
    if ref.shape != hyp.shape or ref.ndim != 1:
        raise MeritInputError(f"CCC of shapes {ref.shape} and {hyp.shape}")
    mr, mh = ref.mean(), hyp.mean()
    cov = np.mean((ref - mr) * (hyp - mh))
    if ref.var() + hyp.var() + (mr - mh) ** 2 == 0:
        return float("nan")
    return float(concordance(mr, mh, ref.var(), hyp.var(), cov))


def attribute_metrics(
    ref: np.ndarray, hyp: np.ndarray, names: Optional[List[str]] = None
) -> Dict:
    """CCC per attribute column and their mean.

    Args:
        ref: (N, A) reference attributes.
        hyp: (N, A) predictions.
        names: (A,) attribute names (default ``attr0``...).

    Returns:
        {"ccc": {name: value}, "ccc_mean": value, "num_utts": N}.
    """
    ref, hyp = np.asarray(ref, np.float64), np.asarray(hyp, np.float64)
    if ref.ndim != 2 or ref.shape != hyp.shape:
        raise MeritInputError(
            f"attributes: reference {ref.shape} and prediction {hyp.shape} "
            "must both be (utterances, attributes)"
        )
    names = names or [f"attr{i}" for i in range(ref.shape[1])]
    if len(names) != ref.shape[1]:
        raise MeritInputError(
            f"{ref.shape[1]} attribute columns but names {list(names)}"
        )
    values = {n: ccc(ref[:, i], hyp[:, i]) for i, n in enumerate(names)}
    return {
        "num_utts": int(ref.shape[0]),
        "ccc": values,
        "ccc_mean": float(np.mean(list(values.values()))),
    }


# ICBHI 2017 challenge (Rocha et al., "An open access database for the evaluation
# of respiratory sound classification algorithms", Physiol. Meas. 40, 2019).
ICBHI_NORMAL = "N"
ICBHI_NAMES = ("icbhi_se", "icbhi_sp", "icbhi_score")
ICBHI_DEFINITION = (
    "ICBHI 2017 challenge scores (Rocha et al., Physiol. Meas. 40, 035001, 2019): "
    f"sensitivity Se = correctly classified abnormal cycles (every class but "
    f"'{ICBHI_NORMAL}': crackle, wheeze, both) / abnormal cycles, an abnormal cycle "
    "counting as correct only when its exact class is predicted (wheeze for a "
    f"'both' cycle is wrong); specificity Sp = correctly classified '{ICBHI_NORMAL}' "
    "(normal) cycles / normal cycles; ICBHI score = (Se + Sp) / 2. From the "
    "confusion matrix; 0 where a set has no cycle of the kind."
)


def icbhi_from_counts(
    correct: np.ndarray,
    support: np.ndarray,
    classes: Sequence[str],
    normal: str = ICBHI_NORMAL,
) -> Dict[str, np.ndarray]:
    """ICBHI sensitivity, specificity and score from per-class counts, vectorised
    over leading dimensions (the randomization test's rounds).

    Args:
        correct: (..., C) correctly classified references per class (the
            confusion matrix's diagonal).
        support: (C,) references per class.
        classes: (C,) the class list; it must hold ``normal``.
        normal: The negative (normal) class; every other class is abnormal.

    Returns:
        ``icbhi_se``, ``icbhi_sp``, ``icbhi_score``: (...) arrays; a ratio with
        no reference cycle is 0 (scikit-learn's ``zero_division=0``).
    """
    classes = list(classes)
    if normal not in classes:
        raise MeritInputError(
            f"ICBHI score: the class list {classes} has no normal class "
            f"'{normal}' (specificity counts its cycles, sensitivity all others)"
        )
    correct = np.asarray(correct, np.float64)
    support = np.asarray(support, np.float64)
    n = classes.index(normal)
    abnormal = np.arange(len(classes)) != n

    def ratio(num, den):
        return np.divide(num, den, out=np.zeros(np.shape(num)), where=den > 0)

    se = ratio(correct[..., abnormal].sum(-1), support[abnormal].sum())
    sp = ratio(correct[..., n], support[n])
    return {"icbhi_se": se, "icbhi_sp": sp, "icbhi_score": (se + sp) / 2}


def icbhi_scores(
    confusion: Sequence[Sequence[int]],
    classes: Sequence[str],
    normal: str = ICBHI_NORMAL,
) -> Dict[str, float]:
    """The ICBHI challenge's sensitivity, specificity and score of a set
    (``ICBHI_DEFINITION``).

    Args:
        confusion: (C, C) counts, rows reference, columns prediction, in
            ``classes`` order (``classification_metrics``' ``confusion_matrix``).
        classes: (C,) the class list; it must hold ``normal``.
        normal: The normal class.

    Returns:
        {"icbhi_se", "icbhi_sp", "icbhi_score"}: floats in [0, 1].
    """
    confusion = np.asarray(confusion, np.float64)
    if confusion.shape != (len(classes), len(classes)):
        raise MeritInputError(
            f"ICBHI score: a {confusion.shape} confusion matrix for the "
            f"{len(classes)} classes {list(classes)}"
        )
    support = confusion.sum(1)
    scores = icbhi_from_counts(np.diag(confusion), support, classes, normal)
    if normal in classes:
        n = list(classes).index(normal)
        if support[n] == 0:
            logger.warning(f"ICBHI score: no '{normal}' cycle: specificity 0")
        if support.sum() == support[n]:
            logger.warning("ICBHI score: no abnormal cycle: sensitivity 0")
    return {k: float(v) for k, v in scores.items()}
