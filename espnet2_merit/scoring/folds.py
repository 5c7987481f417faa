"""Cross-validation folds averaged (IEMOCAP's leave-one-session-out protocol):
per test set, every fold's scores and their mean ± standard deviation.

Each fold is an experiment of its own (``exp/foldK/merit_<tag>``) whose decode dir
holds the scored sets (``decode/<set>/score/summary.json``, stage 10); every fold
must have scored the same sets. The label columns are those IEMOCAP papers
report: UA (unweighted accuracy: the mean of the per-class recalls, the registry's
``recall_macro``), WA (weighted accuracy: the share of utterances right,
``accuracy``) and F1-macro; then every registered attribute (vector) metric and
the enhanced output's waveform metrics. The standard deviation is the sample
standard deviation over the folds (``ddof=1``: divided by folds - 1).
"""

import datetime
import json
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from espnet2_merit.errors import MeritInputError
from espnet2_merit.scoring import registry
from espnet2_merit.scoring.compare import system_decode_dir
from espnet2_merit.scoring.results import (
    format_snr,
    group_sets,
    group_title,
    load_summaries,
    markdown_table,
    scored_tasks,
)
from espnet2_merit.scoring.set_scoring import task_value
from espnet2_merit.utils.datadir import atomic_write_text

# Label metrics of the fold tables: registry name -> header (None: the registry's).
LABEL_COLUMNS = (("recall_macro", "UA"), ("accuracy", "WA"), ("f1_macro", None))
STD_DEFINITION = (
    "mean ± standard deviation over the folds; the standard deviation is the "
    "sample one (ddof=1, divided by folds - 1)"
)
# header, getter from a summary, digits
Column = Tuple[str, Callable[[Dict], Optional[float]], int]


def load_folds(folds: Dict[str, Path], decode_name: str = "decode") -> Dict:
    """{fold: {set: summary}} of every fold's scored sets.

    Args:
        folds: Fold name -> its experiment dir (or its decode dir).
        decode_name: The decode dir under an experiment dir.

    Raises:
        MeritInputError: A fold without scored sets, or whose sets differ from
            the first fold's (naming the fold and the missing summary.json).
    """
    if not folds:
        raise MeritInputError("no fold given")
    out: Dict[str, Dict[str, Dict]] = {}
    decodes = {}
    for name, exp in folds.items():
        decode = decodes[name] = system_decode_dir(Path(exp), decode_name)
        if not decode.is_dir():
            raise MeritInputError(
                f"fold '{name}': no such directory {decode} (run stages 9-10 of "
                "the fold)"
            )
        out[name] = load_summaries(decode)
        if not out[name]:
            raise MeritInputError(
                f"fold '{name}': no scored set under {decode} "
                "(<set>/score/summary.json; run stage 10 of the fold)"
            )
    first = next(iter(out))
    for name, summaries in out.items():
        missing = sorted(set(out[first]) - set(summaries))
        extra = sorted(set(summaries) - set(out[first]))
        if missing:
            raise MeritInputError(
                f"fold '{name}': {decodes[name] / missing[0] / 'score'}/summary.json "
                f"missing ({len(missing)} sets of fold '{first}' not scored: "
                f"{', '.join(missing)})"
            )
        if extra:
            raise MeritInputError(
                f"fold '{name}' has scored sets that fold '{first}' lacks: "
                f"{', '.join(extra)} ({decodes[first] / extra[0] / 'score'}/"
                "summary.json missing)"
            )
    return out


def fold_columns(summaries: List[Dict]) -> List[Column]:
    """Columns of the scored tasks that some summary has a value for: UA, WA,
    F1-macro per label task, the vector metrics, the enhanced waveform metrics
    (task names prefix the headers when two tasks share a kind)."""
    tasks = scored_tasks(summaries)
    kinds = list(tasks.values())
    by_name = {m.name: m for m in registry.METRICS}
    columns: List[Column] = []
    for task, kind in tasks.items():
        prefix = f"{task} " if kinds.count(kind) > 1 else ""
        if kind == "label":
            chosen = [(by_name[n], h) for n, h in LABEL_COLUMNS if n in by_name]
        else:
            chosen = [(m, None) for m in registry.METRICS if m.kind == kind]
        for m, header in chosen:
            suffix = " enh" if kind == "waveform" else ""
            columns.append(
                (
                    f"{prefix}{header or m.header}{suffix}",
                    lambda s, t=task, n=m.name: task_value(s, t, n),
                    m.digits,
                )
            )
    return [c for c in columns if any(c[1](s) is not None for s in summaries)]


def mean_std(values: List[Optional[float]]) -> Dict:
    """Mean and sample standard deviation (ddof=1) of the values that are there;
    ``n`` of them (std None below two)."""
    there = np.array([v for v in values if v is not None], dtype=np.float64)
    return {
        "n": int(there.size),
        "mean": float(there.mean()) if there.size else None,
        "std": float(there.std(ddof=1)) if there.size > 1 else None,
    }


def _mean_text(stats: Dict, digits: int, num_folds: int) -> str:
    if stats["mean"] is None:
        return "—"
    std = "n/a" if stats["std"] is None else f"{stats['std']:.{digits}f}"
    text = f"{stats['mean']:.{digits}f} ± {std}"
    return text + (
        f" ({stats['n']} of {num_folds} folds)" if stats["n"] < num_folds else ""
    )


def _set_titles(names) -> List[Tuple[str, str]]:
    """(title, set name) in RESULTS.md's order: by test and noise set, then SNR."""
    groups, other = group_sets(names)
    titled = [
        (f"{group_title(test, noise)}, {format_snr(snr)} dB", name)
        for (test, noise), sets in groups.items()
        for snr, name in sets
    ]
    return titled + [(name, name) for name in other]


def fold_tables(per_fold: Dict[str, Dict[str, Dict]]) -> Tuple[str, Dict]:
    """Markdown (a summary table, then per set a row per fold and the mean ±
    std) and the JSON-ready numbers {set: {column: {folds, mean, std, n}}}."""
    folds = list(per_fold)
    sets = _set_titles(per_fold[folds[0]])
    results: Dict = {}
    summary_rows, sections, header = [], [], None
    all_cols = fold_columns([s for f in folds for s in per_fold[f].values()])
    for title, name in sets:
        cols = fold_columns([per_fold[f][name] for f in folds])
        body = []
        res = results[name] = {}
        for h, get, digits in cols:
            values = [get(per_fold[f][name]) for f in folds]
            res[h] = {"folds": dict(zip(folds, values)), **mean_std(values)}
        for f in folds:
            row = [f, str(per_fold[f][name].get("num_utts", "—"))]
            row += [
                "—" if res[h]["folds"][f] is None else f"{res[h]['folds'][f]:.{d}f}"
                for h, _, d in cols
            ]
            body.append(row)
        total = sum(per_fold[f][name].get("num_utts") or 0 for f in folds)
        means = [_mean_text(res[h], d, len(folds)) for h, _, d in cols]
        body.append(["mean ± std", str(total)] + means)
        table = markdown_table(["fold", "utts"] + [c[0] for c in cols], body)
        sections.append(f"### {title}\n\n{table}")
        by_header = dict(zip([c[0] for c in cols], means))
        summary_rows.append([title] + [by_header.get(c[0], "—") for c in all_cols])
        header = ["set"] + [c[0] for c in all_cols]
    text = "\n\n".join(
        ["### Mean ± std over the folds\n\n" + markdown_table(header, summary_rows)]
        + sections
    )
    return text, results


def write_fold_results(
    folds: Dict[str, Path], out: Path, decode_name: str = "decode"
) -> str:
    """Write ``out`` (markdown) and ``out`` with ``.json`` (the numbers) for the
    folds' scored sets; returns the tables."""
    per_fold = load_folds(folds, decode_name)
    tables, results = fold_tables(per_fold)
    date = f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M:%S %Z}"
    text = [
        "<!-- Generated by espnet2_merit.bin.merit_folds -->",
        f"# RESULTS over {len(folds)} folds",
        "",
        f"- date: `{date}`",
        "- folds: " + ", ".join(f"`{n}` (`{p}`)" for n, p in folds.items()),
        "- UA: unweighted accuracy (mean of the per-class recalls); WA: weighted "
        "accuracy (share of utterances classified right); F1-macro; `enh`: the "
        "enhanced output's scores (each fold's RESULTS.md defines them).",
        f"- Cells of the mean rows: {STD_DEFINITION}.",
        "",
        tables,
    ]
    atomic_write_text(Path(out), "\n".join(text) + "\n")
    numbers = {
        "date": date,
        "folds": {n: str(p) for n, p in folds.items()},
        "std": "sample (ddof=1)",
        "sets": results,
    }
    atomic_write_text(
        Path(out).with_suffix(".json"), json.dumps(numbers, indent=2) + "\n"
    )
    return tables
