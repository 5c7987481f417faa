#!/usr/bin/env python3
"""The method comparison's table and plot, from the scored runs of bench/methods.sh.

Reads ``<expdir>/merit_<system>_seed<S>/<decode>/<set>/score/{summary.json,
per_utt.tsv}`` for every system and seed, and writes one markdown file with, per
headline metric of every scored task (the registry's ``headline`` rows,
``espnet2_merit.scoring.registry``: F1-macro, CCC mean, SSNR, PESQ, STOI) and
noise set (seen, unseen), a table of mean ± std over seeds per test SNR, the
relative change of the mean over each reference system (``(x - ref) / |ref| x
100``, as the paper reports it) and the two-sided p-value of a paired test, plus
a plot of F1-macro against SNR. Reverberant test sets (``<test>_rir<rooms>_...``,
stage 2's reverberation) get a second table of the same form per rooms (seen or
unseen room types) and noise set, under "Reverberant test sets"; the routing
table and the plot stay on the dry sets. For dB metrics (SSNR) the absolute difference of
the means in dB stands beside the percentage, and ``†`` flags a reference mean
within ±1 dB of 0 dB, where the percentage is meaningless (it grows without
bound as the base nears 0).

Significance pools the seeds: every (seed, utterance) pair of a system is paired
with the same seed and utterance of the reference, then the metric's paired test
is run on the pooled pairs: an approximate randomization test (F1-macro of the
pooled predictions) or a Wilcoxon signed-rank test (per-utterance SE scores);
metrics without a paired test (CCC) get none.

    python bench/methods_table.py \
        --expdir egs2/mini_msp_podcast/merit1/exp/bench_methods \
        --seeds 7 8 9 --out bench/results/methods.md
"""

import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from espnet2_merit.errors import MeritInputError
from espnet2_merit.scoring.compare import SMALL_DB, change_text, relative, small_base
from espnet2_merit.scoring.registry import Metric
from espnet2_merit.scoring.results import (
    format_snr,
    group_sets,
    group_title,
    load_summaries,
    markdown_table,
    parse_set_name,
    split_rooms,
)
from espnet2_merit.scoring.set_scoring import headline_columns, read_per_utt, task_value
from espnet2_merit.scoring.significance import (
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
    "sparse MERIT, + shared expert": ("sparse_shared", "decode"),
    "sparse MERIT, top-p routing (p 0.6, max 2)": ("sparse_topp", "decode"),
    "sparse MERIT, dynamic mixing": ("sparse_dm", "decode"),
    "shared SSL, cascade unfreezing (ICASSP 2025)": ("shared_cascade", "decode"),
    "sparse MERIT, balanced batches + focal + soft labels (IS 2025)": (
        "sparse_bfs",
        "decode",
    ),
    "MTL-AUG on sparse MERIT (TAFFC 2023)": ("mtl_aug", "decode"),
    "MTL-AUG, + unlabelled pool": ("mtl_aug_pool", "decode"),
    "challenge config: + attributes, Mish (IS 2025)": ("challenge", "decode"),
    # The two-run protocol (IS 2025 challenge system): its two branch runs, then
    # the fusion head on their frozen backbones.
    "speech only (WavLM fine-tuned, one step)": ("speech_only", "decode"),
    "text only (transcripts, RoBERTa fine-tuned)": ("text_only", "decode"),
    "speech + text, two-run protocol (IS 2025)": ("speech_text", "decode"),
}
REFERENCES = ("SE pre-processing", "naive MTL")
# Further references of some systems: the fused model against its speech branch.
SYSTEM_REFERENCES = {
    "speech + text, two-run protocol (IS 2025)": (
        "speech only (WavLM fine-tuned, one step)",
    ),
}
Column = Tuple[str, Metric]  # (task, headline metric)


class Run:
    """One system at one seed: its scored sets."""

    def __init__(self, decode_dir: Path):
        self.dir = decode_dir
        self.summaries = load_summaries(decode_dir)
        if not self.summaries:
            raise MeritInputError(f"{decode_dir}: no scored set (run bench/methods.sh)")
        self._rows: Dict[str, Dict] = {}

    def value(self, set_name: str, task: str, metric: str) -> Optional[float]:
        return task_value(self.summaries.get(set_name, {}), task, metric)

    def rows(self, set_name: str) -> Dict[str, Dict[str, str]]:
        if set_name not in self._rows:
            path = self.dir / set_name / "score" / "per_utt.tsv"
            self._rows[set_name] = read_per_utt(path)[1]
        return self._rows[set_name]


def load_runs(expdir: Path, seeds: Sequence[int]) -> Dict[str, List[Run]]:
    """The scored runs of every system run for all ``seeds``; a system with no
    run at all is left out (``methods.sh --systems`` ran a part), one with some
    seeds missing is an error."""
    runs = {}
    for name, (exp, decode) in SYSTEMS.items():
        paths = [
            expdir / f"merit_{exp}_seed{seed}" / decode.format(seed=seed)
            for seed in seeds
        ]
        missing = [(s, p) for s, p in zip(seeds, paths) if not p.is_dir()]
        if len(missing) == len(paths):
            continue
        if missing:
            seed, path = missing[0]
            raise MeritInputError(f"system '{name}', seed {seed}: no {path}")
        runs[name] = [Run(p) for p in paths]
    if not runs:
        raise MeritInputError(f"{expdir}: no system has scored runs")
    return runs


def references(name: str, runs: Dict[str, List[Run]]) -> List[str]:
    """The reference systems a system's cells compare with (those that ran)."""
    refs = REFERENCES + SYSTEM_REFERENCES.get(name, ())
    return [r for r in refs if r != name and r in runs]


def key(column: Column) -> str:
    """A column's key in the results: ``<task>_<metric>`` (as in comparisons)."""
    return f"{column[0]}_{column[1].name}"


def title(column: Column) -> str:
    task, m = column
    return f"{task.upper()} {m.header}" + (f" ({m.unit})" if m.unit else "")


def columns(runs: Dict[str, List[Run]]) -> List[Column]:
    """(task, headline metric) of every task some run scored that some run has a
    value of, tasks in order of first appearance (systems in ``SYSTEMS`` order)."""
    return headline_columns(
        summary
        for system_runs in runs.values()
        for run in system_runs
        for summary in run.summaries.values()
    )


def pooled_test(column: Column, runs: List[Run], refs: List[Run], set_name: str):
    """The metric's paired test of a system against a reference, (seed,
    utterance) pairs pooled; None for a metric without one."""
    task, metric = column
    if metric.test is None:
        return None
    ref_labels, hyp_a, hyp_b, x, y = [], [], [], [], []
    for run, ref in zip(runs, refs):
        mine, theirs = run.rows(set_name), ref.rows(set_name)
        if set(mine) != set(theirs):
            raise MeritInputError(
                f"{set_name}: {run.dir} and {ref.dir} scored different utterances"
            )
        for utt in sorted(mine):
            if metric.test == "randomization":
                ref_labels.append(mine[utt][f"{task}_ref"])
                hyp_a.append(mine[utt][f"{task}_hyp"])
                hyp_b.append(theirs[utt][f"{task}_hyp"])
            else:
                x.append(float(mine[utt][key(column)]))
                y.append(float(theirs[utt][key(column)]))
    if metric.test == "randomization":
        classes = runs[0].summaries[set_name]["tasks"][task]["details"]["classes"]
        return paired_randomization_test(
            ref_labels, hyp_a, hyp_b, classes, statistic=metric.name
        )
    return paired_wilcoxon(x, y, what=f"{set_name} {key(column)}")


def collect(runs: Dict[str, List[Run]]) -> Dict:
    """{column key: {"<test>, <noise>": {system: {snr: cell}}}}; a cell holds the
    mean, std and values over seeds and, per reference, the relative change, the
    difference, whether the reference is near 0 dB, and the test."""
    first = next(iter(runs.values()))[0]
    groups, _ = group_sets(first.summaries)
    results: Dict = {}
    for column in columns(runs):
        task, metric = column
        for (test, noise), sets in groups.items():
            group = f"{test}, {noise}"
            table = results.setdefault(key(column), {}).setdefault(group, {})
            for name, system_runs in runs.items():
                row = table[name] = {}
                for snr, set_name in sets:
                    values = [r.value(set_name, task, metric.name) for r in system_runs]
                    if any(v is None for v in values):
                        continue
                    cell = row[format_snr(snr)] = {
                        "mean": float(np.mean(values)),
                        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0,
                        "values": values,
                        "vs": {},
                    }
                    for ref in references(name, runs):
                        ref_values = [
                            r.value(set_name, task, metric.name) for r in runs[ref]
                        ]
                        if any(v is None for v in ref_values):
                            continue
                        ref_mean = float(np.mean(ref_values))
                        test_ = pooled_test(column, system_runs, runs[ref], set_name)
                        cell["vs"][ref] = {
                            "reference_mean": ref_mean,
                            "relative_percent": relative(cell["mean"], ref_mean),
                            "difference": cell["mean"] - ref_mean,
                            "small_base": small_base(ref_mean, metric),
                            "p_value": None if test_ is None else test_.p_value,
                            "test": None if test_ is None else test_.method,
                            "pairs": None if test_ is None else test_.num_utts,
                        }
    return results


def split_group(group: str) -> Tuple[str, str]:
    """A group key of :func:`collect` -> (test part of the set names, noise)."""
    test, noise = group.rsplit(", ", 1)
    return test, noise


def reverberant(group: str) -> bool:
    """Whether a group holds reverberant sets (``<test>_rir<rooms>``)."""
    return split_rooms(split_group(group)[0])[1] is not None


def _cell(cell: Optional[Dict], metric: Metric, alpha: float) -> str:
    if cell is None:
        return "—"
    digits = metric.digits
    text = f"{cell['mean']:.{digits}f} ± {cell['std']:.{digits}f}"
    notes = []
    for vs in cell["vs"].values():  # in the order of references()
        p = vs["p_value"]
        star = "*" if p is not None and np.isfinite(p) and p < alpha else ""
        notes.append(change_text(cell["mean"], vs["reference_mean"], metric, star))
    return text + (f" ({' / '.join(notes)})" if notes else "")


def markdown(
    results: Dict, cols: List[Column], alpha: float, reverb: bool = False
) -> str:
    """The tables of the dry groups, or (``reverb``) of the reverberant ones."""
    parts = []
    for column in cols:
        for group, table in results.get(key(column), {}).items():
            if reverberant(group) != reverb:
                continue
            snrs = sorted({s for row in table.values() for s in row}, key=float)
            body = [
                [name] + [_cell(row.get(s), column[1], alpha) for s in snrs]
                for name, row in table.items()
                if row
            ]
            if not body:
                continue
            header = ["system"] + [f"{s} dB" for s in snrs]
            heading = group_title(*split_group(group))
            parts.append(
                f"### {title(column)}, {heading}\n\n{markdown_table(header, body)}"
            )
    return "\n\n".join(parts)


ROUTING = (("busiest_share", "busiest expert"), ("usage_entropy", "entropy"),
           ("speech_noise_tv", "speech/noise TV"),
           ("mean_experts", "experts/frame"))  # fmt: skip


def _dry(set_name: str) -> bool:
    parsed = parse_set_name(set_name)
    return parsed is None or split_rooms(parsed[0])[1] is None


def routing_table(runs: Dict[str, List[Run]]) -> str:
    """Per routed system and task: each routing statistic of the scoring stage
    (``espnet2_merit.scoring.routing``), averaged over the dry test sets of a run
    (reverberant ones left out, so the table keeps its meaning), then mean ± std
    over seeds."""
    rows = []
    for name, system_runs in runs.items():
        tasks = sorted(
            {
                t
                for r in system_runs
                for s in r.summaries.values()
                for t in s.get("routing", {})
            }
        )
        for task in tasks:
            cells = []
            for stat, _ in ROUTING:
                per_seed = []
                for r in system_runs:
                    values = [
                        s["routing"][task].get(stat)
                        for n, s in r.summaries.items()
                        if task in s.get("routing", {}) and _dry(n)
                    ]
                    values = [v for v in values if v is not None]
                    if values:
                        per_seed.append(float(np.mean(values)))
                if per_seed:
                    std = float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0
                    cells.append(f"{np.mean(per_seed):.3f} ± {std:.3f}")
                else:
                    cells.append("—")
            rows.append([name, task] + cells)
    if not rows:
        return ""
    header = ["system", "task"] + [h for _, h in ROUTING]
    return (
        "### Routing, mean over the dry test sets\n\nbusiest expert: its share of "
        "the frames (top-1); entropy of the expert shares / log E (1 = uniform); "
        "speech/noise TV: total variation distance between the expert shares of "
        "speech- and noise-dominated frames (0 = routed alike); experts/frame: "
        "routed experts per frame (— for runs decoded before it was written).\n\n"
        + markdown_table(header, rows)
    )


def plot_column(cols: List[Column]) -> Optional[Column]:
    """The plotted metric: the first label task's headline (F1-macro)."""
    return next((c for c in cols if c[1].kind == "label"), cols[0] if cols else None)


def plot(results: Dict, column: Column, path: Path):
    """One metric (mean ± std over seeds) against the test SNR, a panel per noise
    set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = results[key(column)]
    groups = [g for g in table if not reverberant(g)]
    fig, axes = plt.subplots(
        1, len(groups), figsize=(5.5 * len(groups), 4), sharey=True
    )
    for ax, group in zip(np.atleast_1d(axes), groups):
        for name, row in table[group].items():
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
    np.atleast_1d(axes)[0].set_ylabel(f"{title(column)} (mean ± std over seeds)")
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
    cols = columns(runs)
    if not cols:
        raise MeritInputError(f"{args.expdir}: no run has a headline metric")
    results = collect(runs)
    refs = " / ".join(r for r in REFERENCES if r in runs)
    extra = [
        (name, " / ".join(r for r in more if r in runs))
        for name, more in SYSTEM_REFERENCES.items()
        if name in runs and any(r in runs for r in more)
    ]
    if refs and extra:
        refs += " (" + "; ".join(f"{n}: also over {r}" for n, r in extra) + ")"
    elif extra:
        refs = "; ".join(f"{r} (for {n})" for n, r in extra)
    text = [
        args.header.rstrip(),
        "",
        f"Cells: mean ± std over seeds {', '.join(map(str, args.seeds))}; in "
        f"brackets the relative change of the mean over {refs}, "
        f"(x - ref) / |ref| x 100 %, `*` where the pooled paired test gives "
        f"p < {args.alpha} (F1-macro: approximate randomization, 10,000 rounds; "
        "SE metrics: Wilcoxon signed-rank; CCC: no test; the (seed, utterance) "
        "pairs of all seeds pooled). dB metrics add the difference of the means "
        f"in dB; `†`: the reference's mean is within ±{SMALL_DB:g} dB of 0 dB, where "
        "the percentage is meaningless (read the dB difference). SE metrics of the "
        "SE pre-processing system are its SE model's; the SER-only, speech-only, "
        "text-only and speech + text systems have none (no SE task), nor CCC "
        "(they classify only: CCC tables come from systems with an attribute task).",
        "",
        markdown(results, cols, args.alpha),
    ]
    reverb = markdown(results, cols, args.alpha, reverb=True)
    if reverb:
        text += [
            "",
            "## Reverberant test sets",
            "",
            "The same systems on the reverberant test sets (stage 2: every "
            "utterance convolved with an RIR of the seen or unseen room types, "
            "then noise added at the SNR of the reverberant speech); same cells.",
            "",
            reverb,
        ]
    routed = routing_table(runs)
    if routed:
        text += ["", routed]
    plotted = plot_column(cols)
    if args.plot and plotted is not None:
        plot(results, plotted, args.plot)
        text += ["", f"![{title(plotted)} vs SNR]({args.plot.name})"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(text).lstrip() + "\n", encoding="utf-8")
    args.out.with_suffix(".json").write_text(
        json.dumps(results, indent=1, default=float) + "\n", encoding="utf-8"
    )
    print("\n".join(text))


if __name__ == "__main__":
    main()
