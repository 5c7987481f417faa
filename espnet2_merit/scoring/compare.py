"""Comparing systems set by set (recipe stage 11): relative changes over
reference systems and paired significance tests on the shared utterances.

Each system's scored sets are ``<exp>/decode/<set>/score/{summary.json,
per_utt.tsv}`` (stage 10); a system may also be given by a decode dir (the SE
pre-processing cascade's ``decode_enh_<se exp>``). Per set, one table: a row per
system, a column per headline metric of every scored task (registry rows with
``headline``); each non-reference cell adds, per reference, the relative change
``(x - ref) / |ref| * 100`` (as in the paper; for dB metrics also the absolute
difference, and ``†`` when the reference is within ±1 dB of 0, where a
percentage says little) and the two-sided p-value of the metric's paired test,
``*`` when p < alpha.
"""

import logging
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import NO_TARGET
from espnet2_merit.scoring.registry import Metric
from espnet2_merit.scoring.results import (
    format_snr,
    group_sets,
    group_title,
    load_summaries,
    markdown_table,
)
from espnet2_merit.scoring.set_scoring import (
    headline_columns,
    read_per_utt,
    task_value,
)
from espnet2_merit.scoring.significance import (
    paired_randomization_test,
    paired_wilcoxon,
)

logger = logging.getLogger(__name__)
SMALL_DB = 1.0  # |reference| below this many dB: the percentage is flagged


def parse_systems(words: Sequence[str], option: str = "--systems") -> Dict[str, Path]:
    """``name=dir`` words (of ``option``, for messages) -> {name: dir}, in the
    given order."""
    systems: Dict[str, Path] = {}
    for w in words:
        name, sep, path = w.partition("=")
        if not sep or not name or not path:
            raise MeritInputError(f"{option}: expected name=dir, got '{w}'")
        if name in systems:
            raise MeritInputError(f"{option}: name '{name}' given twice")
        if not Path(path).is_dir():
            raise MeritInputError(f"{option}: {name}: no such directory {path}")
        systems[name] = Path(path)
    return systems


def system_decode_dir(path: Path, decode_name: str = "decode") -> Path:
    """A system is an experiment dir (its ``decode_name`` subdir is read) or a
    decode dir itself."""
    return path / decode_name if (path / decode_name).is_dir() else path


def relative(x: float, ref: float) -> Optional[float]:
    """Relative change in percent, (x - ref) / |ref| * 100; None if ref is 0."""
    return None if ref == 0 else (x - ref) / abs(ref) * 100


def small_base(ref: float, metric: Metric) -> bool:
    """True for a dB metric whose reference is within ±``SMALL_DB`` of 0 dB, where
    a relative change in percent says little (it grows without bound near 0)."""
    return metric.unit == "dB" and abs(ref) <= SMALL_DB


def change_text(value: float, ref: float, metric: Metric, mark: str = "") -> str:
    """ "+5.5%", and for dB metrics "+5.5% (+0.31 dB)", with "†" after a base
    near 0 dB (``small_base``); ``mark`` (e.g. "*") follows the percentage."""
    rel = relative(value, ref)
    text = ("n/a" if rel is None else f"{rel:+.1f}%") + mark
    if metric.unit == "dB":
        text += f" ({value - ref:+.2f} dB)" + ("†" if small_base(ref, metric) else "")
    return text


class SetData:
    """One system's scores on one set: summary and per-utterance rows."""

    def __init__(self, system: str, set_name: str, score_dir: Path, summary: Dict):
        self.system, self.set_name, self.summary = system, set_name, summary
        self.path = score_dir / "per_utt.tsv"
        self._rows = None

    @property
    def rows(self) -> Dict[str, Dict[str, str]]:
        if self._rows is None:
            _, self._rows = read_per_utt(self.path)
        return self._rows

    def kind(self, task: str) -> Optional[str]:
        return self.summary.get("tasks", {}).get(task, {}).get("kind")


def _shared_utts(set_name: str, a: SetData, b: SetData) -> List[str]:
    ua, ub = set(a.rows), set(b.rows)
    if ua != ub:
        only_a, only_b = sorted(ua - ub), sorted(ub - ua)
        example = (only_a or only_b)[0]
        raise MeritInputError(
            f"set '{set_name}': systems '{a.system}' ({a.path}) and '{b.system}' "
            f"({b.path}) were scored on different utterances: {len(only_a)} only in "
            f"'{a.system}', {len(only_b)} only in '{b.system}' (e.g. '{example}')"
        )
    return sorted(ua)


def paired_test(
    task: str, metric: Metric, a: SetData, b: SetData, rounds: int, seed: int
):
    """The metric's paired test of system a against reference b on one set."""
    utts = _shared_utts(a.set_name, a, b)
    if metric.test == "randomization":
        classes = a.summary["tasks"][task]["details"]["classes"]
        other = b.summary["tasks"][task]["details"]["classes"]
        if classes != other:
            raise MeritInputError(
                f"set '{a.set_name}': '{a.system}' and '{b.system}' use different "
                f"class lists {classes} and {other} for task '{task}'"
            )
        col = f"{task}_ref"
        # A cross-corpus set's utterances of unmapped classes are not scored.
        utts = [u for u in utts if a.rows[u][col] != NO_TARGET]
        refs = [a.rows[u][col] for u in utts]
        diff = [u for u, r in zip(utts, refs) if b.rows[u][col] != r]
        if diff:
            raise MeritInputError(
                f"set '{a.set_name}': reference labels of '{a.system}' and "
                f"'{b.system}' differ for {len(diff)} utterances (e.g. '{diff[0]}')"
            )
        hyp = f"{task}_hyp"
        return paired_randomization_test(
            refs, [a.rows[u][hyp] for u in utts], [b.rows[u][hyp] for u in utts],
            classes, rounds=rounds, seed=seed, statistic=metric.name,
        )  # fmt: skip
    if metric.test == "wilcoxon":
        column = f"{task}_{metric.name}"
        for d in (a, b):
            if column not in d.rows[utts[0]]:
                raise MeritInputError(f"{d.path}: no column '{column}'")
        return paired_wilcoxon(
            [float(a.rows[u][column]) for u in utts],
            [float(b.rows[u][column]) for u in utts],
            what=f"{a.set_name} {column} {a.system} vs {b.system}",
        )
    return None


def _format_p(p: Optional[float]) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p=n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def columns(sets: Sequence[SetData]) -> List[Tuple[str, Metric]]:
    """(task, headline metric) pairs some system has a value for."""
    return headline_columns(d.summary for d in sets)


def compare(
    systems: Dict[str, Path],
    references: Sequence[str],
    decode_name: str = "decode",
    rounds: int = 10000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Tuple[str, Dict]:
    """Build the comparison; returns (markdown tables, JSON-ready results)."""
    for r in references:
        if r not in systems:
            raise MeritInputError(
                f"--reference '{r}' is not one of the systems {list(systems)}"
            )
    if len(set(references)) != len(references):
        raise MeritInputError(f"--reference names repeated: {list(references)}")
    data: Dict[str, Dict[str, SetData]] = {}
    for name, exp in systems.items():
        decode = system_decode_dir(exp, decode_name)
        summaries = load_summaries(decode)
        if not summaries:
            raise MeritInputError(
                f"system '{name}': no scored set under {decode} (run stage 10)"
            )
        data[name] = {
            s: SetData(name, s, decode / s / "score", summ)
            for s, summ in summaries.items()
        }
    all_sets = set().union(*(d.keys() for d in data.values()))
    groups, other = group_sets(all_sets)
    ordered = [(f"{group_title(t, n)}, {format_snr(snr)} dB", s)
               for (t, n), sets in groups.items() for snr, s in sets]  # fmt: skip
    ordered += [(s, s) for s in other]
    tasks_per_kind: Dict[str, set] = {}
    for d in data.values():
        for s in d.values():
            for task, result in s.summary.get("tasks", {}).items():
                tasks_per_kind.setdefault(result.get("kind"), set()).add(task)

    results: Dict = {"references": list(references), "sets": {}}
    sections = []
    for title, set_name in ordered:
        present = [n for n in systems if set_name in data[n]]
        missing = [n for n in systems if n not in present]
        if missing:
            logger.warning(f"set '{set_name}': not scored for {missing}")
        cols = columns([data[n][set_name] for n in present])
        if not cols:
            continue
        set_res = results["sets"][set_name] = {}
        body = []
        for name in systems:
            if name not in present:
                body.append([name] + ["not scored"] * len(cols))
                continue
            mine = data[name][set_name]
            row, row_res = [name + (" (ref)" if name in references else "")], {}
            for task, metric in cols:
                key = f"{task}_{metric.name}"
                value = task_value(mine.summary, task, metric.name)
                cell_res = row_res[key] = {"value": value, "vs": {}}
                if value is None:
                    row.append("—")
                    continue
                notes = []
                for ref in references:
                    if ref == name or set_name not in data[ref]:
                        continue
                    theirs = data[ref][set_name]
                    ref_value = task_value(theirs.summary, task, metric.name)
                    if ref_value is None:
                        continue
                    test = paired_test(task, metric, mine, theirs, rounds, seed)
                    p = None if test is None else test.p_value
                    sig = p is not None and p < alpha
                    notes.append(
                        change_text(value, ref_value, metric, "*" if sig else "")
                        + f", {_format_p(p)}"
                        + (f" vs {ref}" if len(references) > 1 else "")
                    )
                    cell_res["vs"][ref] = {
                        "relative_percent": relative(value, ref_value),
                        "difference": value - ref_value,
                        "small_base": small_base(ref_value, metric),
                        "p_value": p,
                        "significant": bool(sig),
                        "test": None if test is None else test.method,
                        "num_utts": None if test is None else test.num_utts,
                        "excluded": None if test is None else test.excluded,
                    }
                text = f"{value:.{metric.digits}f}"
                row.append(text + (f" ({'; '.join(notes)})" if notes else ""))
            set_res[name] = row_res
            body.append(row)
        header = ["system"] + [
            (f"{task} " if len(tasks_per_kind.get(m.kind, ())) > 1 else "")
            + m.header
            + (f" ({m.unit})" if m.unit else "")
            for task, m in cols
        ]
        sections.append(f"### {title}\n\n{markdown_table(header, body)}")
    if not sections:
        raise MeritInputError("no set has a metric to compare")
    return "\n\n".join(sections), results
