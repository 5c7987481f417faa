#!/usr/bin/env python3
"""Recipe stage 10: score decoded sets, and collect the scores into RESULTS.md.

Score one set (SER labels, attributes and/or enhanced speech, whatever the model
produced) against the references:

    python -m espnet2_merit.bin.merit_score --ref_dir dump/raw/test1_seen_snr-5 \
        --hyp_dir exp/m/decode/test1_seen_snr-5 \
        --out_dir exp/m/decode/test1_seen_snr-5/score --nj 2

writes ``per_utt.tsv`` (one row per utterance), ``summary.json`` (set-level
scores) and ``confusion_matrix.png``. Collect all scored sets of an experiment:

    python -m espnet2_merit.bin.merit_score --results exp/m

writes ``exp/m/RESULTS.md`` (one table per test set and noise set, one row per
SNR) and ``exp/m/images/expert_usage_*.png``, and prints the tables.
"""

import argparse
import csv
import datetime
import hashlib
import json
import logging
import math
import multiprocessing
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile
from tqdm import tqdm

from espnet2_merit.errors import MeritInputError
from espnet2_merit.metrics.se import SE_METRICS, SSNR_DEFINITION, se_metrics
from espnet2_merit.metrics.ser import (
    attribute_metrics,
    classification_metrics,
    encode_labels,
)
from espnet2_merit.utils.cli import add_log_level, entry_point
from espnet2_merit.utils.datadir import atomic_write_text, read_kaldi

logger = logging.getLogger(__name__)
PROG = "merit_score"
SET_PATTERN = re.compile(r"^(?P<test>.+)_(?P<noise>[^_]+)_snr(?P<snr>-?\d+(?:\.\d+)?)$")
DEFAULT_ATTRIBUTES = ("arousal", "valence", "dominance")


# ------------------------------------------------------------------ file helpers
def read_floats(path: Path, keys: Sequence[str]) -> np.ndarray:
    """(len(keys), D) numbers of a "<key> v1 v2 ..." file, in ``keys`` order."""
    table = read_kaldi(path)
    rows = []
    for key in keys:
        try:
            rows.append([float(v) for v in table[key].split()])
        except ValueError as e:
            raise MeritInputError(f"{path}: '{key}': not numbers: {e}") from e
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise MeritInputError(f"{path}: rows have different widths {sorted(widths)}")
    return np.array(rows, dtype=np.float64)


def check_keys(
    table: Dict[str, str], keys: Sequence[str], path: Path, allow_extra: bool = False
):
    """Every reference key must have an entry in ``path``; other keys are an
    error unless ``allow_extra`` (reference files may cover more utterances)."""
    missing = [k for k in keys if k not in table]
    if missing:
        raise MeritInputError(
            f"{path}: no entry for utterance '{missing[0]}' "
            f"({len(missing)} of {len(keys)} reference utterances missing)"
        )
    extra = [] if allow_extra else sorted(set(table) - set(keys))
    if extra:
        raise MeritInputError(
            f"{path}: utterance '{extra[0]}' is not in the reference set "
            f"({len(extra)} unknown keys)"
        )


def atomic_savefig(fig, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    os.replace(tmp, path)


def _finite_or_none(x):
    """JSON has no NaN/Inf: those become null."""
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_none(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def read_per_utt(path: Path) -> Tuple[List[str], Dict[str, Dict[str, str]]]:
    """``per_utt.tsv`` as (columns, {utt: {column: text}})."""
    if not path.is_file():
        raise MeritInputError(f"{path}: no such file (run merit_score on the set)")
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        columns = list(reader.fieldnames or [])
        if not columns or columns[0] != "utt":
            raise MeritInputError(f"{path}: expected a header starting with 'utt'")
        rows = {}
        for n, row in enumerate(reader, 2):
            if None in row or any(v is None for v in row.values()):
                raise MeritInputError(f"{path}:{n}: wrong number of columns")
            rows[row["utt"]] = row
    return columns, rows


# ------------------------------------------------------------------- SE scoring
def _load(path: str, utt: str, what: str) -> Tuple[np.ndarray, int]:
    if path.endswith("|"):
        raise MeritInputError(
            f"utterance '{utt}': {what} is a pipe command; scoring reads files only"
        )
    try:
        wav, fs = soundfile.read(path, dtype="float64", always_2d=True)
    except Exception as e:  # soundfile's errors do not name the utterance
        raise MeritInputError(f"utterance '{utt}': cannot read {what} {path}: {e}")
    if wav.shape[1] != 1:
        raise MeritInputError(
            f"utterance '{utt}': {what} {path} has {wav.shape[1]} channels, expected 1"
        )
    return wav[:, 0], fs


SEJob = Tuple[str, str, Optional[str], str]  # utt, clean, noisy (None: cached), enh


def _score_utt(job: SEJob) -> Tuple[str, Dict[str, float]]:
    """SE metrics of the enhanced output and (unless its path is None, i.e. its
    scores are cached) of the noisy input (worker)."""
    utt, clean_path, noisy_path, enh_path = job
    clean, fs = _load(clean_path, utt, "clean reference")
    out = {}
    for suffix, path, what in (
        ("", enh_path, "enhanced"),
        ("_noisy", noisy_path, "noisy"),
    ):
        if path is None:
            continue
        wav, rate = _load(path, utt, what)
        if rate != fs:
            raise MeritInputError(
                f"utterance '{utt}': {what} {path} is at {rate} Hz, the clean "
                f"reference {clean_path} at {fs} Hz"
            )
        for name, value in se_metrics(clean, wav, fs, utt=utt).items():
            out[name + suffix] = value
    return utt, out


def _worker_init():
    # One BLAS thread per process: --nj processes already fill the cores.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def score_se(jobs: List[SEJob], nj: int) -> Dict[str, Dict]:
    """SE metrics of all utterances over ``nj`` processes (chunked, with progress)."""
    bar = tqdm(total=len(jobs), desc="SE metrics", unit="utt", mininterval=2)
    results = {}
    if nj <= 1 or len(jobs) <= 1:
        from threadpoolctl import threadpool_limits

        # Multi-threaded BLAS only adds overhead on these small matrices.
        with threadpool_limits(1):
            for job in jobs:
                utt, res = _score_utt(job)
                results[utt] = res
                bar.update()
    else:
        chunk = max(1, min(32, len(jobs) // (4 * nj)))
        ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        with ctx.Pool(min(nj, len(jobs)), initializer=_worker_init) as pool:
            for utt, res in pool.imap_unordered(_score_utt, jobs, chunksize=chunk):
                results[utt] = res
                bar.update()
    bar.close()
    return results


# The noisy input's scores are a property of the test set, the same for every
# system decoded on it: computed once, kept beside the set's wav.scp.
NOISY_CACHE = "noisy_scores.json"


def read_noisy_cache(ref_dir: Path, inputs: Sequence[Path], keys: Sequence[str]):
    """{utt: {metric: value}} of ``keys`` from the set's cache, or None when it is
    missing, stale (its wav.scp / spk1.scp changed) or lacks an utterance."""
    path = ref_dir / NOISY_CACHE
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    scores = cache.get("scores", {})
    if cache.get("inputs") != _fingerprint(inputs) or any(
        k not in scores for k in keys
    ):
        return None
    return {k: scores[k] for k in keys}


def write_noisy_cache(ref_dir: Path, inputs: Sequence[Path], scores: Dict[str, Dict]):
    text = json.dumps({"inputs": _fingerprint(inputs), "scores": scores})
    try:
        atomic_write_text(ref_dir / NOISY_CACHE, text + "\n")
    except OSError as e:  # a read-only data dir: no cache, nothing wrong
        logger.info(f"noisy-input scores not cached in {ref_dir}: {e}")


# ---------------------------------------------------------------- set scoring
def _fingerprint(files: Sequence[Path]) -> Dict[str, str]:
    """Content hash and modification time of each input text file: a re-decoded
    set rewrites them, so a matching fingerprint means the scores are current."""
    out = {}
    for path in files:
        data = path.read_bytes()
        out[str(path.resolve())] = (
            f"{hashlib.sha1(data).hexdigest()} {path.stat().st_mtime_ns}"
        )
    return out


def _class_list(hyp_dir: Path, ref_dir: Path, option: Optional[Path], labels):
    for path in (option, hyp_dir / "emotion_list", ref_dir / "emotion_list",
                 ref_dir.parent / "emotion_list"):  # fmt: skip
        if path is not None and path.is_file():
            classes = path.read_text(encoding="utf-8").split()
            if not classes or len(set(classes)) != len(classes):
                raise MeritInputError(f"{path}: expected distinct class names")
            return classes, path
    classes = sorted(set(labels))
    logger.warning(f"no emotion_list found: classes taken from the labels {classes}")
    return classes, None


def score_set(
    ref_dir: Path,
    hyp_dir: Path,
    out_dir: Path,
    nj: int = 1,
    emotion_list: Optional[Path] = None,
    attribute_names: Optional[Sequence[str]] = None,
) -> Dict:
    """Score one decoded set; returns the summary (also written to out_dir)."""
    ref_dir, hyp_dir, out_dir = Path(ref_dir), Path(hyp_dir), Path(out_dir)
    for d, what in ((ref_dir, "--ref_dir"), (hyp_dir, "--hyp_dir")):
        if not d.is_dir():
            raise MeritInputError(f"{what}: no such directory {d}")
    hyp = {
        n: hyp_dir / n for n in ("emotion", "posteriors", "emotion_attr", "spk1.scp")
    }
    hyp = {n: p for n, p in hyp.items() if p.is_file()}
    if not hyp:
        raise MeritInputError(
            f"{hyp_dir}: nothing to score (no emotion, posteriors, emotion_attr or "
            "spk1.scp)"
        )

    def ref_file(name: str, why: str) -> Path:
        path = ref_dir / name
        if not path.is_file():
            raise MeritInputError(f"{path}: no such file (needed to score {why})")
        return path

    key_file = ref_dir / "wav.scp" if (ref_dir / "wav.scp").is_file() else None
    key_file = key_file or ref_file("emotion", "emotions")
    keys = sorted(read_kaldi(key_file))
    if not keys:
        raise MeritInputError(f"{key_file}: no utterances")
    inputs = [key_file]
    columns: Dict[str, List] = {"utt": keys}
    summary: Dict = {"set": hyp_dir.name, "num_utts": len(keys)}

    # SER: labels (or the argmax of the posteriors).
    if "emotion" in hyp or "posteriors" in hyp:
        ref_path = ref_file("emotion", f"{hyp_dir}'s emotions")
        ref_table = read_kaldi(ref_path)
        check_keys(ref_table, keys, ref_path, allow_extra=True)
        ref_labels = [ref_table[k] for k in keys]
        hyp_labels = None
        if "emotion" in hyp:
            table = read_kaldi(hyp["emotion"])
            check_keys(table, keys, hyp["emotion"])
            hyp_labels = [table[k] for k in keys]
        classes, list_path = _class_list(
            hyp_dir, ref_dir, emotion_list, ref_labels + (hyp_labels or [])
        )
        if "posteriors" in hyp:
            table = read_kaldi(hyp["posteriors"])
            check_keys(table, keys, hyp["posteriors"])
            post = read_floats(hyp["posteriors"], keys)
            if post.shape[1] != len(classes):
                raise MeritInputError(
                    f"{hyp['posteriors']}: {post.shape[1]} columns, but "
                    f"{len(classes)} classes {classes}"
                )
            if hyp_labels is None:
                hyp_labels = [classes[i] for i in post.argmax(1)]
            inputs.append(hyp["posteriors"])
        # Labels outside the class list: an error naming the file, never dropped.
        encode_labels(ref_labels, classes, str(ref_path))
        encode_labels(hyp_labels, classes, str(hyp.get("emotion") or hyp["posteriors"]))
        ser = classification_metrics(ref_labels, hyp_labels, classes)
        summary["ser"] = ser
        columns.update(ref=ref_labels, hyp=hyp_labels)
        inputs += [ref_path] + [p for p in (hyp.get("emotion"), list_path) if p]

    # Attributes: CCC per column.
    if "emotion_attr" in hyp:
        ref_path = ref_file("emotion_attr", f"{hyp_dir}'s attributes")
        check_keys(read_kaldi(ref_path), keys, ref_path, allow_extra=True)
        check_keys(read_kaldi(hyp["emotion_attr"]), keys, hyp["emotion_attr"])
        ref_attr = read_floats(ref_path, keys)
        hyp_attr = read_floats(hyp["emotion_attr"], keys)
        if ref_attr.shape != hyp_attr.shape:
            raise MeritInputError(
                f"{hyp['emotion_attr']} has {hyp_attr.shape[1]} columns, "
                f"{ref_path} {ref_attr.shape[1]}"
            )
        names = list(attribute_names or DEFAULT_ATTRIBUTES)
        if len(names) != ref_attr.shape[1]:
            if attribute_names:
                raise MeritInputError(
                    f"--attribute_names {names}: but {ref_path} has "
                    f"{ref_attr.shape[1]} columns"
                )
            names = [f"attr{i}" for i in range(ref_attr.shape[1])]
        summary["attributes"] = attribute_metrics(ref_attr, hyp_attr, names)
        for i, name in enumerate(names):
            columns[f"ref_{name}"] = ref_attr[:, i].tolist()
            columns[f"hyp_{name}"] = hyp_attr[:, i].tolist()
        inputs += [ref_path, hyp["emotion_attr"]]

    # SE: enhanced output and noisy input against the clean reference.
    if "spk1.scp" in hyp:
        clean_path = ref_file("spk1.scp", "enhanced speech (clean reference)")
        noisy_path = ref_file("wav.scp", "the noisy input")
        tables = {}
        for path in (clean_path, noisy_path, hyp["spk1.scp"]):
            tables[path] = read_kaldi(path)
            check_keys(tables[path], keys, path, allow_extra=path != hyp["spk1.scp"])
        noisy = read_noisy_cache(ref_dir, [clean_path, noisy_path], keys)
        jobs = [
            (
                k,
                tables[clean_path][k],
                None if noisy else tables[noisy_path][k],
                tables[hyp["spk1.scp"]][k],
            )
            for k in keys
        ]
        results = score_se(jobs, nj)
        if noisy is None:
            noisy = {k: {m: results[k][m + "_noisy"] for m in SE_METRICS} for k in keys}
            write_noisy_cache(ref_dir, [clean_path, noisy_path], noisy)
        for k in keys:
            results[k].update({m + "_noisy": v for m, v in noisy[k].items()})
        se = {"ssnr_definition": SSNR_DEFINITION}
        nan_counts = {}
        for kind, suffix in (("enhanced", ""), ("noisy", "_noisy")):
            se[kind], nan_counts[kind] = {}, {}
            for m in SE_METRICS:
                values = np.array([results[k][m + suffix] for k in keys])
                columns[m + suffix] = values.tolist()
                bad = int(np.isnan(values).sum())
                nan_counts[kind][m] = bad
                if bad:
                    logger.warning(
                        f"{hyp_dir.name}: {m} ({kind}) undefined for {bad} of "
                        f"{len(keys)} utterances: excluded from its mean"
                    )
                se[kind][m] = float(np.nanmean(values)) if bad < len(values) else None
        se["nan_counts"] = nan_counts
        summary["se"] = se
        inputs += [clean_path, noisy_path, hyp["spk1.scp"]]

    summary["options"] = _options(emotion_list, attribute_names)
    summary["inputs"] = _fingerprint(sorted(set(inputs)))
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "per_utt.tsv", _per_utt_text(columns))
    if "ser" in summary:
        plot_confusion(summary["ser"], out_dir / "confusion_matrix.png", hyp_dir.name)
    # summary.json last: its presence marks a complete score directory.
    summary = _finite_or_none(summary)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _per_utt_text(columns: Dict[str, List]) -> str:
    names = list(columns)
    lines = ["\t".join(names)]
    for i in range(len(columns["utt"])):
        cells = []
        for n in names:
            v = columns[n][i]
            cells.append(f"{v:.6f}" if isinstance(v, float) else str(v))
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"


def _options(emotion_list, attribute_names) -> Dict:
    return {
        "emotion_list": str(Path(emotion_list).resolve()) if emotion_list else None,
        "attribute_names": list(attribute_names) if attribute_names else None,
    }


def up_to_date(out_dir: Path, emotion_list=None, attribute_names=None) -> bool:
    """True when out_dir holds a complete score made with the same options from
    unchanged inputs."""
    try:
        summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
        if summary.get("options") != _options(emotion_list, attribute_names):
            return False
        files = [Path(p) for p in summary["inputs"]]
        if not (out_dir / "per_utt.tsv").is_file():
            return False
        if "ser" in summary and not (out_dir / "confusion_matrix.png").is_file():
            return False
        return (
            all(p.is_file() for p in files) and _fingerprint(files) == summary["inputs"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def plot_confusion(ser: Dict, path: Path, title: str):
    """Confusion matrix image: colour by row share (recall), counts written in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.array(ser["confusion_matrix"], dtype=float)
    classes = ser["classes"]
    rows = cm.sum(1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    size = 1.2 + 0.7 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            color = "white" if share[i, j] > 0.5 else "black"
            text = f"{int(cm[i, j])}\n{share[i, j]:.0%}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title(f"{title}\nF1-macro {ser['f1_macro']:.4f}, acc {ser['accuracy']:.4f}")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of reference class")
    atomic_savefig(fig, path)
    plt.close(fig)


# ---------------------------------------------------------------- RESULTS.md
def parse_set_name(name: str) -> Optional[Tuple[str, str, float]]:
    """``test1_seen_snr-5`` -> ("test1", "seen", -5.0); None if not that form."""
    m = SET_PATTERN.match(name)
    return (m["test"], m["noise"], float(m["snr"])) if m else None


def format_snr(snr: float) -> str:
    return f"{snr:g}"


def _fmt(value, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


# (header, getter from a summary, digits)
RESULT_COLUMNS = [
    ("utts", lambda s: s.get("num_utts"), 0),
    ("F1-macro", lambda s: s.get("ser", {}).get("f1_macro"), 4),
    ("F1-micro", lambda s: s.get("ser", {}).get("f1_micro"), 4),
    ("Acc", lambda s: s.get("ser", {}).get("accuracy"), 4),
    ("P-macro", lambda s: s.get("ser", {}).get("precision_macro"), 4),
    ("R-macro", lambda s: s.get("ser", {}).get("recall_macro"), 4),
    ("CCC mean", lambda s: s.get("attributes", {}).get("ccc_mean"), 4),
] + [
    (
        f"{label} {short}",
        lambda s, m=metric, k=kind: s.get("se", {}).get(k, {}).get(m),
        digits,
    )
    for metric, label, digits in (
        ("ssnr", "SSNR", 2),
        ("pesq", "PESQ", 3),
        ("stoi", "STOI", 4),
        ("sisdr", "SI-SDR", 2),
    )
    for kind, short in (("enhanced", "enh"), ("noisy", "noisy"))
]


def markdown_table(header: List[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def load_summaries(decode_dir: Path) -> Dict[str, Dict]:
    """{set name: summary} of every ``<decode_dir>/<set>/score/summary.json``."""
    out = {}
    for path in sorted(decode_dir.glob("*/score/summary.json")):
        try:
            out[path.parent.parent.name] = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise MeritInputError(f"{path}: not valid JSON: {e}") from e
    return out


def group_sets(names) -> Tuple[Dict[Tuple[str, str], List[Tuple[float, str]]], List]:
    """Sets grouped by (test set, noise set), sorted by SNR; and the others."""
    groups, other = defaultdict(list), []
    for name in names:
        parsed = parse_set_name(name)
        if parsed is None:
            other.append(name)
        else:
            groups[parsed[:2]].append((parsed[2], name))
    return {k: sorted(v) for k, v in sorted(groups.items())}, sorted(other)


def read_usage(path: Path) -> np.ndarray:
    """(E,) mean over utterances of each expert's share of the frames."""
    table = read_kaldi(path)
    if not table:
        raise MeritInputError(f"{path}: empty")
    return read_floats(path, list(table)).mean(0)


def _results_table(summaries: Dict[str, Dict], rows: List[Tuple[str, str]], first):
    """Markdown table; ``rows`` are (first-column text, set name); columns that no
    row has are left out."""
    cols = [
        c
        for c in RESULT_COLUMNS
        if any(c[1](summaries[s]) is not None for _, s in rows)
    ]
    body = [
        [label] + [_fmt(get(summaries[s]), d) for _, get, d in cols]
        for label, s in rows
    ]
    return markdown_table([first] + [c[0] for c in cols], body)


def results_dir(exp_dir: Path, decode_dir: Optional[Path] = None) -> Path:
    """Where RESULTS.md and images/ of a decode dir go: the experiment dir for its
    default ``decode``, the decode dir itself for any other (e.g. the SE
    pre-processing cascade's ``decode_enh_<se exp>``), so neither overwrites the
    other."""
    exp_dir = Path(exp_dir)
    if (
        decode_dir is None
        or Path(decode_dir).resolve() == (exp_dir / "decode").resolve()
    ):
        return exp_dir
    return Path(decode_dir)


def write_results(exp_dir: Path, decode_dir: Optional[Path] = None) -> str:
    """Collect the scored sets of an experiment into ``RESULTS.md`` (and
    expert-usage images under ``images/``) of :func:`results_dir`. Returns the
    tables."""
    exp_dir = Path(exp_dir)
    out_dir = results_dir(exp_dir, decode_dir)
    decode_dir = Path(decode_dir) if decode_dir else exp_dir / "decode"
    summaries = load_summaries(decode_dir)
    if not summaries:
        raise MeritInputError(
            f"{decode_dir}: no scored set (*/score/summary.json); run merit_score first"
        )
    groups, other = group_sets(summaries)
    tables = []
    for (test, noise), sets in groups.items():
        rows = [(format_snr(snr), name) for snr, name in sets]
        table = _results_table(summaries, rows, "SNR (dB)")
        tables.append(f"### {test}, {noise} noise\n\n{table}")
    if other:
        rows = [(name, name) for name in other]
        tables.append(f"### Other sets\n\n{_results_table(summaries, rows, 'set')}")
    main_tables = "\n\n".join(tables)

    usage_text = _usage_section(out_dir, decode_dir, groups)
    classes = next(
        (s["ser"]["classes"] for s in summaries.values() if "ser" in s), None
    )
    text = [
        "<!-- Generated by espnet2_merit.bin.merit_score --results -->",
        f"# RESULTS: {exp_dir.name}"
        + ("" if out_dir == exp_dir else f", {decode_dir.name}"),
        "",
        "## Environment",
        "",
        f"- date: `{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M:%S %Z}`",
        f"- model: `{exp_dir.name}` (`{exp_dir}`)",
        f"- espnet2_merit: `{_version()}`, python `{sys.version.split()[0]}`",
        f"- scored sets: {len(summaries)} (`{decode_dir}/<set>/score/`)",
        "",
        "## Metrics",
        "",
        "- SER: F1-macro (headline; every class of the list counts), F1-micro, "
        "accuracy, macro precision and recall (scikit-learn)"
        + (f"; classes {', '.join(classes)}." if classes else "."),
        "- CCC mean: concordance correlation of the emotional attributes, averaged.",
        f"- {SSNR_DEFINITION}",
        "- PESQ: wide-band (P.862.2, `pesq` package, 16 kHz). STOI: classic "
        "(`pystoi`). SI-SDR: zero-mean, scale-invariant (dB).",
        "- `enh`: the model's enhanced output; `noisy`: the unprocessed input, both "
        "against the clean reference. Means over utterances; an utterance where "
        "PESQ/STOI is undefined is left out of that mean (counted in summary.json).",
        "- Per-utterance scores and confusion matrices: "
        f"`{decode_dir.name}/<set>/score/"
        "{per_utt.tsv,summary.json,confusion_matrix.png}`.",
        "",
        "## Results",
        "",
        main_tables,
    ]
    if usage_text:
        text += ["", usage_text]
    atomic_write_text(out_dir / "RESULTS.md", "\n".join(text) + "\n")
    return main_tables


def _usage_section(out_dir: Path, decode_dir: Path, groups) -> str:
    """Expert usage per task and SNR: a table and a bar chart per test/noise set."""
    parts = []
    for task in ("se", "ser"):
        for (test, noise), sets in groups.items():
            usage = {}
            for snr, name in sets:
                path = decode_dir / name / "routing" / f"{task}_usage"
                if path.is_file():
                    usage[snr] = read_usage(path)
            if not usage:
                continue
            widths = {len(u) for u in usage.values()}
            if len(widths) != 1:
                raise MeritInputError(
                    f"{decode_dir}/*/routing/{task}_usage: expert counts differ "
                    f"between SNRs: {sorted(widths)}"
                )
            image = out_dir / "images" / f"expert_usage_{task}_{test}_{noise}.png"
            _plot_usage(usage, image, f"{task.upper()} expert usage, {test} {noise}")
            num = widths.pop()
            rows = [
                [format_snr(snr)] + [f"{v:.3f}" for v in u] for snr, u in usage.items()
            ]
            table = markdown_table(
                ["SNR (dB)"] + [f"expert {i}" for i in range(num)], rows
            )
            parts.append(
                f"### {task.upper()} task, {test}, {noise} noise\n\n{table}\n\n"
                f"![{task} expert usage]({image.relative_to(out_dir)})"
            )
    if not parts:
        return ""
    head = (
        "## Expert usage\n\nShare of frames routed to each expert (top-1), the mean "
        "over utterances of each utterance's share."
    )
    return "\n\n".join([head] + parts)


def _plot_usage(usage: Dict[float, np.ndarray], path: Path, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snrs = sorted(usage)
    num = len(usage[snrs[0]])
    width = 0.8 / num
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(snrs), 3.2))
    x = np.arange(len(snrs))
    for e in range(num):
        ax.bar(x + (e - (num - 1) / 2) * width, [usage[s][e] for s in snrs], width,
               label=f"expert {e}")  # fmt: skip
    ax.set_xticks(x, [f"{format_snr(s)} dB" for s in snrs])
    ax.set_ylabel("share of frames")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8)
    atomic_savefig(fig, path)
    plt.close(fig)


def _version() -> str:
    import espnet2_merit

    version = getattr(espnet2_merit, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as dist_version

            version = dist_version("espnet2_merit")
        except Exception:
            version = "unknown"
    try:
        commit = subprocess.run(
            ["git", "-C", str(Path(espnet2_merit.__file__).parent), "rev-parse",
             "--short", "HEAD"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        if commit.returncode == 0:
            version += f", git {commit.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return version


# ------------------------------------------------------------------------ CLI
def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Score a decoded set (SER, attributes, SE), or collect an "
        "experiment's scores into RESULTS.md (--results)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    # Repeatable, in step: one process scores every set of an experiment (a
    # process per set pays the imports again, seconds each).
    parser.add_argument(
        "--ref_dir",
        type=Path,
        action="append",
        help="Reference data dir (dump/raw/<set>); repeat with --hyp_dir and "
        "--out_dir to score several sets",
    )
    parser.add_argument(
        "--hyp_dir",
        type=Path,
        action="append",
        help="Decoded set (exp/<m>/decode/<set>)",
    )
    parser.add_argument(
        "--out_dir", type=Path, action="append", help="Where the scores go"
    )
    parser.add_argument("--nj", type=int, default=1, help="Processes for SE metrics")
    parser.add_argument(
        "--emotion_list",
        type=Path,
        help="Class list (default: the hyp dir's, else the ref dir's or its parent's)",
    )
    parser.add_argument(
        "--attribute_names",
        nargs="+",
        help="Names of the emotion_attr columns (default: arousal valence dominance)",
    )
    parser.add_argument(
        "--force", action="store_true", help="Rescore even if the score is current"
    )
    parser.add_argument(
        "--results", type=Path, help="Experiment dir: write its RESULTS.md instead"
    )
    parser.add_argument(
        "--decode_dir", type=Path, help="With --results: default <exp>/decode"
    )
    add_log_level(parser)
    return parser


def main(cmd=None):
    parser = get_parser()
    args = parser.parse_args(cmd)
    with entry_point(PROG, args.log_level):
        if args.results is not None:
            print(write_results(args.results, args.decode_dir))
            out = results_dir(args.results, args.decode_dir) / "RESULTS.md"
            logger.info(f"wrote {out}")
            return
        missing = [o for o in ("ref_dir", "hyp_dir", "out_dir") if not getattr(args, o)]
        if missing:
            parser.error(f"give --results, or all of --{', --'.join(missing)}")
        if not len(args.ref_dir) == len(args.hyp_dir) == len(args.out_dir):
            parser.error(
                f"--ref_dir, --hyp_dir and --out_dir go together: got "
                f"{len(args.ref_dir)}, {len(args.hyp_dir)} and {len(args.out_dir)}"
            )
        if args.nj < 1:
            parser.error("--nj must be >= 1")
        for ref_dir, hyp_dir, out_dir in zip(args.ref_dir, args.hyp_dir, args.out_dir):
            if not args.force and up_to_date(
                out_dir, args.emotion_list, args.attribute_names
            ):
                logger.info(f"{out_dir}: scores are up to date, skipped")
                continue
            summary = score_set(
                ref_dir,
                hyp_dir,
                out_dir,
                nj=args.nj,
                emotion_list=args.emotion_list,
                attribute_names=args.attribute_names,
            )
            logger.info(f"{hyp_dir.name}: {_one_line(summary)}")


def _one_line(summary: Dict) -> str:
    parts = [f"{summary['num_utts']} utts"]
    if "ser" in summary:
        parts.append(f"F1-macro {summary['ser']['f1_macro']:.4f}")
    if "attributes" in summary:
        parts.append(f"CCC {summary['attributes']['ccc_mean']:.4f}")
    for m, v in summary.get("se", {}).get("enhanced", {}).items():
        noisy = summary["se"]["noisy"][m]
        parts.append(f"{m} {_fmt(v, 3)} (noisy {_fmt(noisy, 3)})")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
