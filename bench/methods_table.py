#!/usr/bin/env python3
"""The method comparison's table and plot, from the scored runs of bench/methods.sh.

Reads ``<expdir>/merit_<system>_seed<S>/<decode>/<set>/score/{summary.json,
per_utt.tsv}`` for every system and seed, and writes one markdown file with, per
metric (F1-macro, SSNR, PESQ, STOI) and noise set (seen, unseen), a table of
mean ± std over seeds per test SNR, the relative change of the mean over each
reference system (``(x - ref) / |ref| x 100``, as the paper reports it) and the
two-sided p-value of a paired test, plus a plot of F1-macro against SNR.

Significance pools the seeds: every (seed, utterance) pair of a system is paired
with the same seed and utterance of the reference, then an approximate
randomization test (F1-macro of the pooled predictions) or a Wilcoxon signed-rank
test (per-utterance SE scores) is run on the pooled pairs.

    python bench/methods_table.py \
        --expdir egs2/mini_msp_podcast/merit1/exp/bench_methods \
        --seeds 7 8 9 --out bench/results/methods.md
"""

import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from espnet2_merit.bin.merit_compare import set_value
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

# name in the table: (experiment name without the seed, decode dir)
SYSTEMS = {
    "SER only (noisy input)": ("ser_only", "decode"),
    "SE pre-processing": ("ser_only", "decode_enh_merit_se_only_seed{seed}"),
    "naive MTL": ("naive_mtl", "decode"),
    "dense MERIT": ("dense_merit", "decode"),
    "sparse MERIT": ("sparse_merit", "decode"),
    "sparse MERIT, hard router (authors')": ("sparse_hard", "decode"),
    "sparse MERIT, layer-weighted experts": ("sparse_ws", "decode"),
}
REFERENCES = ("SE pre-processing", "naive MTL")
# (key, title, per_utt column, digits)
METRICS = [
    ("f1_macro", "SER F1-macro", None, 3),
    ("ssnr", "SE segmental SNR (dB)", "ssnr", 2),
    ("pesq", "SE PESQ-wb", "pesq", 2),
    ("stoi", "SE STOI", "stoi", 3),
]


class Run:
    """One system at one seed: its scored sets."""

    def __init__(self, decode_dir: Path):
        self.dir = decode_dir
        self.summaries = load_summaries(decode_dir)
        if not self.summaries:
            raise MeritInputError(f"{decode_dir}: no scored set (run bench/methods.sh)")
        self._rows: Dict[str, Dict] = {}

    def value(self, set_name: str, key: str) -> Optional[float]:
        return set_value(self.summaries.get(set_name, {}), key)

    def rows(self, set_name: str) -> Dict[str, Dict[str, str]]:
        if set_name not in self._rows:
            path = self.dir / set_name / "score" / "per_utt.tsv"
            self._rows[set_name] = read_per_utt(path)[1]
        return self._rows[set_name]


def load_runs(expdir: Path, seeds: Sequence[int]) -> Dict[str, List[Run]]:
    runs = {}
    for name, (exp, decode) in SYSTEMS.items():
        runs[name] = []
        for seed in seeds:
            path = expdir / f"merit_{exp}_seed{seed}" / decode.format(seed=seed)
            if not path.is_dir():
                raise MeritInputError(f"system '{name}', seed {seed}: no {path}")
            runs[name].append(Run(path))
    return runs


def pooled_test(key: str, column, runs: List[Run], refs: List[Run], set_name: str):
    """Paired test of a system against a reference, (seed, utterance) pairs pooled."""
    ref_labels, hyp_a, hyp_b, x, y = [], [], [], [], []
    for run, ref in zip(runs, refs):
        mine, theirs = run.rows(set_name), ref.rows(set_name)
        if set(mine) != set(theirs):
            raise MeritInputError(
                f"{set_name}: {run.dir} and {ref.dir} scored different utterances"
            )
        for utt in sorted(mine):
            if key == "f1_macro":
                ref_labels.append(mine[utt]["ref"])
                hyp_a.append(mine[utt]["hyp"])
                hyp_b.append(theirs[utt]["hyp"])
            else:
                x.append(float(mine[utt][column]))
                y.append(float(theirs[utt][column]))
    if key == "f1_macro":
        classes = runs[0].summaries[set_name]["ser"]["classes"]
        return paired_randomization_test(ref_labels, hyp_a, hyp_b, classes)
    return paired_wilcoxon(x, y, what=f"{set_name} {column}")


def collect(runs: Dict[str, List[Run]]) -> Dict:
    """{metric: {"<test>, <noise>": {system: {snr: cell}}}}; a cell holds the mean,
    std and values over seeds and, per reference, the relative change and test."""
    first = next(iter(runs.values()))[0]
    groups, _ = group_sets(first.summaries)
    results: Dict = {}
    for key, _, column, _ in METRICS:
        for (test, noise), sets in groups.items():
            table = results.setdefault(key, {}).setdefault(f"{test}, {noise}", {})
            for name, system_runs in runs.items():
                row = table[name] = {}
                for snr, set_name in sets:
                    values = [r.value(set_name, key) for r in system_runs]
                    if any(v is None for v in values):
                        continue
                    cell = row[format_snr(snr)] = {
                        "mean": float(np.mean(values)),
                        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0,
                        "values": values,
                        "vs": {},
                    }
                    for ref in REFERENCES:
                        if ref == name:
                            continue
                        ref_values = [r.value(set_name, key) for r in runs[ref]]
                        if any(v is None for v in ref_values):
                            continue
                        ref_mean = float(np.mean(ref_values))
                        test_ = pooled_test(
                            key, column, system_runs, runs[ref], set_name
                        )
                        cell["vs"][ref] = {
                            "relative_percent": (
                                None
                                if ref_mean == 0
                                else (cell["mean"] - ref_mean) / abs(ref_mean) * 100
                            ),
                            "p_value": test_.p_value,
                            "test": test_.method,
                            "pairs": test_.num_utts,
                        }
    return results


def _cell(cell: Optional[Dict], digits: int, alpha: float) -> str:
    if cell is None:
        return "—"
    text = f"{cell['mean']:.{digits}f} ± {cell['std']:.{digits}f}"
    notes = []
    for ref in REFERENCES:
        vs = cell["vs"].get(ref)
        if vs is None:
            continue
        rel = vs["relative_percent"]
        p = vs["p_value"]
        star = "*" if p is not None and np.isfinite(p) and p < alpha else ""
        notes.append("n/a" if rel is None else f"{rel:+.1f}%{star}")
    return text + (f" ({' / '.join(notes)})" if notes else "")


def markdown(results: Dict, alpha: float) -> str:
    parts = []
    for key, title, _, digits in METRICS:
        for group, table in results[key].items():
            snrs = sorted({s for row in table.values() for s in row}, key=float)
            body = [
                [name] + [_cell(row.get(s), digits, alpha) for s in snrs]
                for name, row in table.items()
                if row
            ]
            header = ["system"] + [f"{s} dB" for s in snrs]
            parts.append(
                f"### {title}, {group} noise\n\n{markdown_table(header, body)}"
            )
    return "\n\n".join(parts)


def plot(results: Dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(results["f1_macro"])
    fig, axes = plt.subplots(
        1, len(groups), figsize=(5.5 * len(groups), 4), sharey=True
    )
    for ax, group in zip(np.atleast_1d(axes), groups):
        for name, row in results["f1_macro"][group].items():
            snrs = sorted(row, key=float)
            ax.errorbar(
                [float(s) for s in snrs],
                [row[s]["mean"] for s in snrs],
                yerr=[row[s]["std"] for s in snrs],
                marker="o",
                capsize=3,
                label=name,
            )
        ax.set_title(f"{group} noise")
        ax.set_xlabel("test SNR (dB)")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("SER F1-macro (mean ± std over seeds)")
    np.atleast_1d(axes)[-1].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--expdir", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True, help="markdown to write")
    parser.add_argument("--plot", type=Path, help="PNG of F1-macro vs SNR")
    parser.add_argument("--header", default="", help="text put above the tables")
    parser.add_argument("--alpha", type=float, default=0.05)
    return parser


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    runs = load_runs(args.expdir, args.seeds)
    results = collect(runs)
    refs = " / ".join(REFERENCES)
    text = [
        args.header.rstrip(),
        "",
        f"Cells: mean ± std over seeds {', '.join(map(str, args.seeds))}; in "
        f"brackets the relative change of the mean over {refs}, "
        f"(x - ref) / |ref| x 100 %, `*` where the pooled paired test gives "
        f"p < {args.alpha} (F1-macro: approximate randomization, 10,000 rounds; "
        "SE metrics: Wilcoxon signed-rank; the (seed, utterance) pairs of all seeds "
        "pooled). SE-only metrics of the SE pre-processing system are its SE "
        "model's; the SER-only system has none.",
        "",
        markdown(results, args.alpha),
    ]
    if args.plot:
        plot(results, args.plot)
        text += ["", f"![F1-macro vs SNR]({args.plot.name})"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(text).lstrip() + "\n", encoding="utf-8")
    args.out.with_suffix(".json").write_text(
        json.dumps(results, indent=1, default=float) + "\n", encoding="utf-8"
    )
    print("\n".join(text))


if __name__ == "__main__":
    main()
