#!/usr/bin/env python3
"""Recipe stage 11: compare systems set by set, with relative improvements over
reference systems and paired significance tests.

    python -m espnet2_merit.bin.merit_compare \
        --systems sparse=exp/sparse mtl=exp/mtl \
            sepre=exp/ser_only/decode_enh_se_only \
        --reference sepre --reference2 mtl --out exp/compare/RESULTS.md

Each system's scored sets are ``<exp>/decode/<set>/score/{summary.json,per_utt.tsv}``
(stage 10); a system may also be given by its decode dir (the SE pre-processing
cascade's ``decode_enh_<se exp>``). Per set, one table: a row per system, columns
F1-macro, SSNR, PESQ, STOI; each non-reference cell adds the relative change over
each reference,
``(x - ref) / |ref| * 100`` (as in the paper), and the two-sided p-value of a
paired test on the shared utterances, marked ``*`` when p < alpha:
approximate randomization for F1-macro, Wilcoxon signed-rank for the SE metrics
(see ``espnet2_merit.metrics.significance``). Also writes the numbers as JSON
next to the markdown (``RESULTS.json``).
"""

import argparse
import datetime
import json
import logging
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from espnet2_merit.bin.merit_score import (
    format_snr,
    group_sets,
    load_summaries,
    markdown_table,
    read_per_utt,
)
from espnet2_merit.errors import MeritInputError
from espnet2_merit.metrics.significance import (
    paired_randomization_test,
    paired_wilcoxon,
)
from espnet2_merit.utils.cli import add_log_level, entry_point
from espnet2_merit.utils.datadir import atomic_write_text

logger = logging.getLogger(__name__)
PROG = "merit_compare"

# (key, header, per_utt column, digits)
METRICS = [
    ("f1_macro", "F1-macro", None, 4),
    ("ssnr", "SSNR (dB)", "ssnr", 2),
    ("pesq", "PESQ", "pesq", 3),
    ("stoi", "STOI", "stoi", 4),
]


def parse_systems(words: Sequence[str]) -> Dict[str, Path]:
    """``name=dir`` words -> {name: dir}, in the given order."""
    systems: Dict[str, Path] = {}
    for w in words:
        name, sep, path = w.partition("=")
        if not sep or not name or not path:
            raise MeritInputError(f"--systems: expected name=dir, got '{w}'")
        if name in systems:
            raise MeritInputError(f"--systems: name '{name}' given twice")
        if not Path(path).is_dir():
            raise MeritInputError(f"--systems: {name}: no such directory {path}")
        systems[name] = Path(path)
    return systems


def system_decode_dir(path: Path, decode_name: str = "decode") -> Path:
    """A system is an experiment dir (its ``decode_name`` subdir is read) or a
    decode dir itself, e.g. ``exp/merit_ser_only/decode_enh_merit_se_only`` for the
    SE pre-processing cascade."""
    return path / decode_name if (path / decode_name).is_dir() else path


def set_value(summary: Dict, key: str) -> Optional[float]:
    if key == "f1_macro":
        return summary.get("ser", {}).get("f1_macro")
    return summary.get("se", {}).get("enhanced", {}).get(key)


def relative(x: float, ref: float) -> Optional[float]:
    """Relative change in percent, (x - ref) / |ref| * 100; None if ref is 0."""
    return None if ref == 0 else (x - ref) / abs(ref) * 100


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
    key: str,
    column: Optional[str],
    a: SetData,
    b: SetData,
    rounds: int,
    seed: int,
):
    """Paired test of system a against reference b on one metric of one set."""
    utts = _shared_utts(a.set_name, a, b)
    if key == "f1_macro":
        classes = a.summary["ser"]["classes"]
        if classes != b.summary["ser"]["classes"]:
            raise MeritInputError(
                f"set '{a.set_name}': '{a.system}' and '{b.system}' use different "
                f"class lists {classes} and {b.summary['ser']['classes']}"
            )
        refs = [a.rows[u]["ref"] for u in utts]
        diff = [u for u, r in zip(utts, refs) if b.rows[u]["ref"] != r]
        if diff:
            raise MeritInputError(
                f"set '{a.set_name}': reference labels of '{a.system}' and "
                f"'{b.system}' differ for {len(diff)} utterances (e.g. '{diff[0]}')"
            )
        return paired_randomization_test(
            refs,
            [a.rows[u]["hyp"] for u in utts],
            [b.rows[u]["hyp"] for u in utts],
            classes,
            rounds=rounds,
            seed=seed,
        )
    for d in (a, b):
        if column not in d.rows[utts[0]]:
            raise MeritInputError(f"{d.path}: no column '{column}'")
    return paired_wilcoxon(
        [float(a.rows[u][column]) for u in utts],
        [float(b.rows[u][column]) for u in utts],
        what=f"{a.set_name} {column} {a.system} vs {b.system}",
    )


def _format_p(p: float) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p=n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


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
    ordered = [(f"{t}, {n} noise, {format_snr(snr)} dB", s)
               for (t, n), sets in groups.items() for snr, s in sets]  # fmt: skip
    ordered += [(s, s) for s in other]

    results: Dict = {"references": list(references), "sets": {}}
    sections = []
    for title, set_name in ordered:
        present = [n for n in systems if set_name in data[n]]
        missing = [n for n in systems if n not in present]
        if missing:
            logger.warning(f"set '{set_name}': not scored for {missing}")
        cols = [m for m in METRICS
                if any(set_value(data[n][set_name].summary, m[0]) is not None
                       for n in present)]  # fmt: skip
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
            for key, _, column, digits in cols:
                value = set_value(mine.summary, key)
                cell_res = row_res[key] = {"value": value, "vs": {}}
                if value is None:
                    row.append("—")
                    continue
                notes = []
                for ref in references:
                    if ref == name or set_name not in data[ref]:
                        continue
                    ref_value = set_value(data[ref][set_name].summary, key)
                    if ref_value is None:
                        continue
                    test = paired_test(
                        key, column, mine, data[ref][set_name], rounds, seed
                    )
                    rel = relative(value, ref_value)
                    sig = test.p_value is not None and test.p_value < alpha
                    rel_text = "n/a" if rel is None else f"{rel:+.1f}%"
                    notes.append(
                        f"{rel_text}{'*' if sig else ''}, {_format_p(test.p_value)}"
                        + (f" vs {ref}" if len(references) > 1 else "")
                    )
                    cell_res["vs"][ref] = {
                        "relative_percent": rel,
                        "p_value": test.p_value,
                        "significant": bool(sig),
                        "test": test.method,
                        "num_utts": test.num_utts,
                        "excluded": test.excluded,
                    }
                text = f"{value:.{digits}f}"
                row.append(text + (f" ({'; '.join(notes)})" if notes else ""))
            set_res[name] = row_res
            body.append(row)
        header = ["system"] + [c[1] for c in cols]
        sections.append(f"### {title}\n\n{markdown_table(header, body)}")
    if not sections:
        raise MeritInputError("no set has a metric to compare")
    return "\n\n".join(sections), results


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Compare scored systems set by set: relative improvements over "
        "reference systems and paired significance tests",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--systems",
        nargs="+",
        required=True,
        help="name=dir words; dir: an experiment dir or a decode dir",
    )
    parser.add_argument(
        "--reference", nargs="+", required=True, help="Reference system name(s)"
    )
    parser.add_argument("--reference2", help="A second reference system")
    parser.add_argument("--out", type=Path, required=True, help="RESULTS.md to write")
    parser.add_argument("--decode_name", default="decode", help="<exp>/<this>/<set>")
    parser.add_argument(
        "--rounds", type=int, default=10000, help="Randomization rounds (F1-macro)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=0.05, help="Level marked *")
    add_log_level(parser)
    return parser


def main(cmd=None):
    parser = get_parser()
    args = parser.parse_args(cmd)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    references = list(args.reference) + ([args.reference2] if args.reference2 else [])
    with entry_point(PROG, args.log_level):
        systems = parse_systems(args.systems)
        tables, results = compare(
            systems, references, args.decode_name, args.rounds, args.seed, args.alpha
        )
    date = f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M:%S %Z}"
    results.update(
        date=date,
        systems={n: str(p) for n, p in systems.items()},
        rounds=args.rounds,
        seed=args.seed,
        alpha=args.alpha,
    )
    ref_text = ", ".join(f"`{r}`" for r in references)
    text = [
        "<!-- Generated by espnet2_merit.bin.merit_compare -->",
        "# System comparison",
        "",
        f"- date: `{date}`",
        "- systems: " + ", ".join(f"`{n}` (`{p}`)" for n, p in systems.items()),
        f"- reference(s): {ref_text}",
        "- Cells: the system's score; for a non-reference system, in brackets, the "
        "relative change over each reference, (x - ref) / |ref| x 100 %, and the "
        "two-sided p-value of a paired test on the same utterances; "
        f"`*`: p < {args.alpha}.",
        "- F1-macro: approximate randomization test (each utterance's two "
        f"predictions swapped at random, {args.rounds} rounds, seed {args.seed}; "
        "exact enumeration when the systems disagree on few utterances).",
        "- SSNR, PESQ, STOI (enhanced output; see each system's RESULTS.md for the "
        "SSNR definition): Wilcoxon signed-rank test on the per-utterance scores "
        "(utterances where a score is undefined left out).",
        "",
        tables,
    ]
    atomic_write_text(args.out, "\n".join(text) + "\n")
    atomic_write_text(
        args.out.with_suffix(".json"),
        json.dumps(_nan_to_none(results), indent=2) + "\n",
    )
    print(tables)
    logger.info(f"wrote {args.out}")


def _nan_to_none(x):
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    if isinstance(x, (float, np.floating)) and not math.isfinite(x):
        return None
    return x


if __name__ == "__main__":
    main()
