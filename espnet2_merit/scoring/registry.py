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

A row with ``default=False`` (the ICBHI challenge's scores, which only mean
something for a corpus whose classes are normal vs abnormal) is computed only
when a selection names it: ``--metrics default icbhi_score`` (``default``: every
default row) or ``merit.sh --score_metrics``. Without a selection, scoring
computes the default rows; tables and comparisons show every row some scored set
has a value for, so they follow what was scored.
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
    default: bool = True  # computed without a selection naming it (False: only
    # when named, e.g. the ICBHI scores, whose class list must hold "N")


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


def _icbhi(key: str) -> Callable:
    def score(ref, hyp, classes) -> float:
        details = _classification_of(tuple(ref), tuple(hyp), tuple(classes))
        return ser.icbhi_scores(details["confusion_matrix"], classes)[key]

    return score


def _ccc_mean(ref: np.ndarray, hyp: np.ndarray, names: Sequence[str]) -> float:
    return ser.attribute_metrics(ref, hyp, list(names))["ccc_mean"]


def _ssnr(clean, test, fs, utt=None) -> float:
    return se.segmental_snr(clean, test, fs, utt=utt)


_RANDOMIZATION, _WILCOXON = "randomization", "wilcoxon"
METRICS: List[Metric] = [
    # name, header, digits, kind, function, paired test, headline, unit, default
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
    Metric("icbhi_se", "ICBHI Se", 4, "label", _icbhi("icbhi_se"),
           _RANDOMIZATION, default=False),
    Metric("icbhi_sp", "ICBHI Sp", 4, "label", _icbhi("icbhi_sp"),
           _RANDOMIZATION, default=False),
    Metric("icbhi_score", "ICBHI score", 4, "label", _icbhi("icbhi_score"),
           _RANDOMIZATION, True, default=False),
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


DEFAULT = "default"  # in a selection: every row with ``default``


def selected(names: Optional[Sequence[str]] = None) -> List[str]:
    """The metric names a selection stands for, in registry order: the default
    rows when ``names`` is empty or None, else the rows ``names`` gives, plus
    every default row where it holds ``"default"``."""
    check_names(names)
    wanted = set(names or [DEFAULT])
    return [
        m.name for m in METRICS if m.name in wanted or (DEFAULT in wanted and m.default)
    ]


def metrics_of(
    kind: str, names: Optional[Sequence[str]] = None, every: bool = False
) -> List[Metric]:
    """The registered metrics of a target kind: those of the selection ``names``
    (``selected``: the default rows when None), or every row with ``every`` (what
    tables list, keeping the columns that some scored set has)."""
    chosen = set(all_names() if every else selected(names))
    return [m for m in METRICS if m.kind == kind and m.name in chosen]


def check_names(names: Optional[Sequence[str]]) -> None:
    """An error naming every entry of ``names`` that is neither a metric nor
    ``"default"``."""
    known = all_names()
    unknown = [n for n in names or [] if n not in known and n != DEFAULT]
    if unknown:
        from espnet2_merit.errors import MeritInputError

        raise MeritInputError(
            f"--metrics: {unknown} are not metrics (registered: {known}, or "
            f"'{DEFAULT}' for every default one)"
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
