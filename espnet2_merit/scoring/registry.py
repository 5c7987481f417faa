"""The metric registry: every score the package reports, in one list.

A metric is one function and one row here: set scoring (``set_scoring``), the
``RESULTS.md`` tables (``results``), comparisons with their paired tests
(``compare``), the benchmarks' tables and the noisy-input cache all follow this
list. Each row scores one target kind:

- ``label``: a set-level score from (references, hypotheses, classes);
- ``vector``: a set-level score from (N, A) references and predictions and the
  value names;
- ``waveform``: a per-utterance score from (clean, test, fs, utt), averaged over
  utterances, reported for the enhanced output and for the noisy input.
"""

import copy
import functools
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

import numpy as np

from espnet2_merit.scoring import se, ser


class Metric(NamedTuple):
    name: str  # key in a task's scores, and the per_utt.tsv column of a waveform one
    header: str  # column header in tables
    digits: int  # decimals in tables
    kind: str  # the target kind it scores: label | vector | waveform
    fn: Callable
    test: Optional[str] = None  # paired test: "randomization" | "wilcoxon" | None
    headline: bool = False  # one of the columns of comparisons
    unit: str = ""  # "dB": comparisons add the absolute difference


@functools.lru_cache(maxsize=1)
def _classification_of(ref: tuple, hyp: tuple, classes: tuple) -> Dict:
    return ser.classification_metrics(list(ref), list(hyp), list(classes))


def label_details(
    ref: Sequence[str], hyp: Sequence[str], classes: Sequence[str]
) -> Dict:
    """``ser.classification_metrics`` of a set, computed once for all the label
    metrics of that set (and its warnings logged once)."""
    return copy.deepcopy(_classification_of(tuple(ref), tuple(hyp), tuple(classes)))


def _classification(key: str) -> Callable:
    def score(ref, hyp, classes) -> float:
        return _classification_of(tuple(ref), tuple(hyp), tuple(classes))[key]

    return score


def _ccc_mean(ref: np.ndarray, hyp: np.ndarray, names: Sequence[str]) -> float:
    return ser.attribute_metrics(ref, hyp, list(names))["ccc_mean"]


def _ssnr(clean, test, fs, utt=None) -> float:
    return se.segmental_snr(clean, test, fs, utt=utt)


_RANDOMIZATION, _WILCOXON = "randomization", "wilcoxon"
METRICS: List[Metric] = [
    # name, header, digits, kind, function, paired test, headline, unit
    Metric("f1_macro", "F1-macro", 4, "label", _classification("f1_macro"),
           _RANDOMIZATION, True),
    Metric("f1_micro", "F1-micro", 4, "label", _classification("f1_micro"),
           _RANDOMIZATION),
    Metric("accuracy", "Acc", 4, "label", _classification("accuracy"),
           _RANDOMIZATION),
    Metric("precision_macro", "P-macro", 4, "label",
           _classification("precision_macro"), _RANDOMIZATION),
    Metric("recall_macro", "R-macro", 4, "label", _classification("recall_macro"),
           _RANDOMIZATION),
    Metric("ccc_mean", "CCC mean", 4, "vector", _ccc_mean, None, True),
    Metric("ssnr", "SSNR", 2, "waveform", _ssnr, _WILCOXON, True, "dB"),
    Metric("pesq", "PESQ", 3, "waveform", se.pesq_wb, _WILCOXON, True),
    Metric("stoi", "STOI", 4, "waveform", se.stoi, _WILCOXON, True),
    Metric("sisdr", "SI-SDR", 2, "waveform", se.si_sdr, _WILCOXON, False, "dB"),
]  # fmt: skip


def all_names() -> List[str]:
    """Every registered metric name, in registry order (read from ``METRICS`` on
    each call, so a row added at run time counts)."""
    return [m.name for m in METRICS]


def metrics_of(kind: str, names: Optional[Sequence[str]] = None) -> List[Metric]:
    """The registered metrics of a target kind (only ``names`` if given)."""
    return [m for m in METRICS if m.kind == kind and (names is None or m.name in names)]


def check_names(selected: Optional[Sequence[str]]) -> None:
    """An error naming every entry of ``selected`` that is not a metric."""
    known = all_names()
    unknown = [n for n in selected or [] if n not in known]
    if unknown:
        from espnet2_merit.errors import MeritInputError

        raise MeritInputError(
            f"--metrics: {unknown} are not metrics (registered: {known})"
        )


def waveform_scores(
    clean: np.ndarray,
    test: np.ndarray,
    fs: int,
    utt: Optional[str] = None,
    names: Optional[Sequence[str]] = None,
) -> Dict[str, float]:
    """Every (selected) waveform metric of one utterance."""
    clean, test = se.match_lengths(clean, test, fs, utt)
    return {
        m.name: float(m.fn(clean, test, fs, utt=utt))
        for m in metrics_of("waveform", names)
    }
