"""Scoring one decoded set against its references (recipe stage 10).

The decode directory's ``outputs.json`` (``espnet2_merit.inference.decode_dir``)
names each task's target: its kind, the file that holds the predictions and,
in the reference data directory, the file of the same name that holds the truth.
Every task whose reference file exists is scored with the registered metrics of
its kind (``espnet2_merit.scoring.registry``); a task without references (an
unlabelled test set) is skipped with a message. Writes ``per_utt.tsv`` (one row
per utterance, columns ``<task>_...``), ``confusion_<task>.png`` per label task
and ``summary.json`` (last: its presence marks a complete score directory).
"""

import csv
import json
import logging
import math
import multiprocessing
import os
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import soundfile
from tqdm import tqdm

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import NO_TARGET
from espnet2_merit.scoring import registry, ser
from espnet2_merit.scoring.cross_corpus import CrossSpec
from espnet2_merit.scoring.se import SSNR_DEFINITION
from espnet2_merit.utils.datadir import (
    MANIFEST,
    atomic_write_text,
    file_digest,
    iter_kaldi,
    read_kaldi,
)

logger = logging.getLogger(__name__)
NOISY_CACHE = "noisy_scores.json"
KINDS = ("label", "vector", "waveform")
CROSS_TARGET = "emotion"  # the label target that cross-corpus maps apply to


# ------------------------------------------------------------------ file helpers
def read_floats(path: Path, keys: Sequence[str]) -> np.ndarray:
    """(len(keys), D) finite numbers of a "<key> v1 v2 ..." file, in ``keys``
    order; a line that is not D finite numbers is an error naming it."""
    lines = {key: (num, value) for num, key, value in iter_kaldi(path)}
    rows: List[List[float]] = []
    for key in keys:
        if key not in lines:
            raise MeritInputError(f"{path}: no entry for utterance '{key}'")
        num, value = lines[key]
        try:
            row = [float(v) for v in value.split()]
        except ValueError as e:
            raise MeritInputError(f"{path}:{num}: '{key}': not numbers: {e}") from None
        if not all(map(math.isfinite, row)):
            raise MeritInputError(f"{path}:{num}: '{key}': NaN or Inf in '{value}'")
        if rows and len(row) != len(rows[0]):
            raise MeritInputError(
                f"{path}:{num}: '{key}' has {len(row)} numbers, the utterance "
                f"'{keys[0]}' {len(rows[0])}"
            )
        rows.append(row)
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


def read_manifest(hyp_dir: Path) -> Dict[str, Dict]:
    """Task -> target description of a decode directory."""
    path = hyp_dir / MANIFEST
    if not path.is_file():
        raise MeritInputError(
            f"{path}: no such file (a decode directory written by merit_inference "
            "has it)"
        )
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))["tasks"]
    except (ValueError, KeyError, TypeError) as e:
        raise MeritInputError(f"{path}: not a decode manifest ({e!r})") from None
    if not isinstance(tasks, dict) or not tasks:
        raise MeritInputError(f"{path}: 'tasks' names no task: nothing to score")
    for task, target in tasks.items():
        if (
            not isinstance(target, dict)
            or target.get("kind") not in KINDS
            or not isinstance(target.get("file"), str)
            or not target["file"]
        ):
            raise MeritInputError(
                f"{path}: task '{task}': expected a 'kind' ({' | '.join(KINDS)}) "
                "and a 'file'"
            )
    return tasks


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


def fingerprint(files: Sequence[Path]) -> Dict[str, str]:
    """Content hash and modification time of each input text file: a re-decoded
    set rewrites them, so a matching fingerprint means the scores are current."""
    out = {}
    for path in files:
        out[str(Path(path).resolve())] = (
            f"{file_digest(path, 'sha1')} {Path(path).stat().st_mtime_ns}"
        )
    return out


def _finite_or_none(x):
    """JSON has no NaN/Inf: those become null."""
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_none(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# ------------------------------------------------------------ waveform scoring
def _load(path: str, utt: str, what: str) -> Tuple[np.ndarray, int]:
    if path.endswith("|"):
        raise MeritInputError(
            f"utterance '{utt}': {what} is a pipe command; scoring reads files only"
        )
    try:
        wav, fs = soundfile.read(path, dtype="float64", always_2d=True)
    except Exception as e:  # soundfile's errors do not name the utterance
        raise MeritInputError(
            f"utterance '{utt}': cannot read {what} {path}: {e}"
        ) from None
    if wav.shape[1] != 1:
        raise MeritInputError(
            f"utterance '{utt}': {what} {path} has {wav.shape[1]} channels, expected 1"
        )
    return wav[:, 0], fs


# utt, clean, noisy, enhanced, metric names of the enhanced output, metric names
# of the noisy input (those its cache lacks; none: the noisy wav is not read)
WaveJob = Tuple[str, str, str, str, Tuple[str, ...], Tuple[str, ...]]


def _score_utt(job: WaveJob) -> Tuple[str, Dict[str, float]]:
    """Waveform metrics of the enhanced output and (those not cached) of the noisy
    input (worker)."""
    utt, clean_path, noisy_path, enh_path, names, noisy_names = job
    clean, fs = _load(clean_path, utt, "clean reference")
    out = {}
    for suffix, path, what, chosen in (
        ("", enh_path, "enhanced", names),
        ("_noisy", noisy_path, "noisy", noisy_names),
    ):
        if not chosen:
            continue
        wav, rate = _load(path, utt, what)
        if rate != fs:
            raise MeritInputError(
                f"utterance '{utt}': {what} {path} is at {rate} Hz, the clean "
                f"reference {clean_path} at {fs} Hz"
            )
        scores = registry.waveform_scores(clean, wav, fs, utt, chosen)
        for name, value in scores.items():
            out[name + suffix] = value
    return utt, out


def _worker_init():
    # One BLAS thread per process: --nj processes already fill the cores.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def score_waveforms(jobs: List[WaveJob], nj: int) -> Dict[str, Dict]:
    """Waveform metrics of all utterances over ``nj`` processes."""
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
# system decoded on it: computed once per metric, kept beside the set's wav.scp.
def read_noisy_cache(
    ref_dir: Path, inputs: Sequence[Path], keys: Sequence[str]
) -> Dict[str, Dict[str, float]]:
    """{utt: {metric: value}} of the metrics the set's cache holds for every one
    of ``keys``; empty when the cache is missing, unreadable or stale (its
    wav.scp or reference list changed). A metric the cache lacks (one added to
    the registry since, or left out by ``--metrics``) is absent: the caller
    computes it."""
    try:
        cache = json.loads((ref_dir / NOISY_CACHE).read_text(encoding="utf-8"))
        if cache.get("inputs") != fingerprint(inputs):
            return {}
        scores = cache["scores"]
        held = set(cache["metrics"])
        rows = [scores[k] for k in keys]
        for row in rows:
            held.intersection_update(row)
        # The parsed rows themselves where they hold just these metrics, as
        # floats (what write_noisy_cache writes): no second dict per utterance.
        out = {}
        for k, row in zip(keys, rows):
            if len(row) != len(held):
                row = {m: row[m] for m in held}
            if not _FLOAT.issuperset(map(type, row.values())):
                row = {m: float(v) for m, v in row.items()}
            out[k] = row
        return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


_FLOAT = frozenset([float])


def write_noisy_cache(ref_dir: Path, inputs: Sequence[Path], scores: Dict[str, Dict]):
    """Keep ``scores`` ({utt: {metric: value}}) as the set's noisy-input cache;
    its ``metrics`` are those every utterance has."""
    metrics = (
        sorted(set.intersection(*(set(v) for v in scores.values()))) if scores else []
    )
    text = json.dumps(
        {"inputs": fingerprint(inputs), "metrics": metrics, "scores": scores}
    )
    try:
        atomic_write_text(ref_dir / NOISY_CACHE, text + "\n")
    except OSError as e:  # a read-only data dir: no cache, nothing wrong
        logger.info(f"noisy-input scores not cached in {ref_dir}: {e}")


# ---------------------------------------------------------------- set scoring
class _Set:
    """What scoring one set accumulates: per-utterance columns, the summary, the
    files it read (for the fingerprint)."""

    def __init__(self, keys: List[str], name: str):
        self.keys = keys
        self.columns: Dict[str, List] = {"utt": keys}
        self.summary: Dict = {"set": name, "num_utts": len(keys), "tasks": {}}
        self.inputs: List[Path] = []


def _label_task(
    s: _Set, task: str, target: Dict, ref: Path, hyp: Path, metrics, cross=None
):
    ref_table, hyp_table = read_kaldi(ref), read_kaldi(hyp)
    check_keys(ref_table, s.keys, ref, allow_extra=True)
    check_keys(hyp_table, s.keys, hyp)
    refs = [ref_table[k] for k in s.keys]
    hyps = [hyp_table[k] for k in s.keys]
    extra: Dict = {}
    if cross is not None and target.get("name") == CROSS_TARGET:
        refs, hyps, classes, extra = _cross_labels(s, task, target, refs, hyp, cross)
    else:
        classes = list(target.get("classes") or sorted(set(refs)))
        # Labels outside the class list: an error naming the line, never dropped.
        for path in (ref, hyp):
            _check_labels(path, set(s.keys), classes, task)
        s.columns[f"{task}_ref"], s.columns[f"{task}_hyp"] = refs, hyps
    details = registry.label_details(refs, hyps, classes)
    scores = {}
    for m in metrics:
        try:
            scores[m.name] = float(m.fn(refs, hyps, classes))
        except MeritInputError as e:  # e.g. the ICBHI score without a class "N"
            raise MeritInputError(
                f"{ref}: task '{task}' (classes from {hyp.parent / MANIFEST}): "
                f"metric {m.name}: {e}"
            ) from None
    s.summary["tasks"][task] = {
        **_head(target),
        "scores": scores,
        "details": details,
        **extra,
    }
    s.inputs += [ref, hyp]


def _cross_labels(s: _Set, task: str, target: Dict, labels, hyp: Path, spec):
    """A cross-corpus label task (``espnet2_merit.scoring.cross_corpus``): the
    references through the test corpus's map (unmapped ones left out), the
    predictions from the posteriors summed per shared class. Returns the scored
    (references, predictions), the shared classes and the summary's additions;
    the per-utterance columns hold every utterance (``-``: left out)."""
    manifest = hyp.parent / MANIFEST
    if not target.get("classes"):
        raise MeritInputError(f"{manifest}: task '{task}' lists no classes")
    try:
        cross = spec.resolve(target["classes"])
    except MeritInputError as e:
        raise MeritInputError(f"{e} (the model's classes: {manifest})") from None
    post = hyp.with_name(hyp.name + "_posteriors")
    if not post.is_file():
        raise MeritInputError(
            f"{post}: no such file (cross-corpus scoring predicts from the "
            "posteriors that merit_inference writes)"
        )
    check_keys(read_kaldi(post), s.keys, post)
    probs = read_floats(post, s.keys)
    if probs.shape[1] != len(cross.model_classes):
        raise MeritInputError(
            f"{post} has {probs.shape[1]} posteriors per utterance, the classes of "
            f"{manifest} are {len(cross.model_classes)}"
        )
    preds = cross.predict(probs)
    mapped, left_out = cross.map_references(labels)
    kept = [i for i, m in enumerate(mapped) if m is not None]
    if not kept:
        raise MeritInputError(
            f"{s.summary['set']}: no reference label ({sorted(set(labels))}) is "
            f"mapped by {spec.test_map.path}: nothing to score"
        )
    if left_out:
        logger.info(
            f"{s.summary['set']}: {len(labels) - len(kept)} utterances of unmapped "
            f"classes left out of '{task}' ({left_out})"
        )
    s.summary["cross_corpus"] = cross.describe()
    s.columns[f"{task}_ref"] = [NO_TARGET if m is None else m for m in mapped]
    s.columns[f"{task}_hyp"] = preds
    s.columns[f"{task}_ref_corpus"] = list(labels)
    s.inputs += [post, *cross.files()]
    extra = {"num_scored": len(kept), "left_out": left_out}
    return [mapped[i] for i in kept], [preds[i] for i in kept], cross.shared, extra


def _check_labels(path: Path, keys: set, classes: Sequence[str], task: str):
    known = set(classes)
    for num, key, label in iter_kaldi(path):
        if key in keys and label not in known:
            raise MeritInputError(
                f"{path}:{num}: utterance '{key}': label '{label}' is not in the "
                f"class list {list(classes)} of task '{task}'"
            )


def _vector_task(s: _Set, task: str, target: Dict, ref: Path, hyp: Path, metrics):
    check_keys(read_kaldi(ref), s.keys, ref, allow_extra=True)
    check_keys(read_kaldi(hyp), s.keys, hyp)
    refs, hyps = read_floats(ref, s.keys), read_floats(hyp, s.keys)
    names = list(target.get("names") or [f"v{i}" for i in range(refs.shape[1])])
    if refs.shape != hyps.shape or refs.shape[1] != len(names):
        raise MeritInputError(
            f"{hyp} has {hyps.shape[1]} columns, {ref} {refs.shape[1]}, the task "
            f"{len(names)} ({' '.join(names)})"
        )
    details = ser.attribute_metrics(refs, hyps, names)
    scores = {m.name: float(m.fn(refs, hyps, names)) for m in metrics}
    s.summary["tasks"][task] = {**_head(target), "scores": scores, "details": details}
    for i, name in enumerate(names):
        s.columns[f"{task}_ref_{name}"] = refs[:, i].tolist()
        s.columns[f"{task}_hyp_{name}"] = hyps[:, i].tolist()
    s.inputs += [ref, hyp]


def _waveform_task(
    s: _Set, task: str, target: Dict, ref: Path, hyp: Path, ref_dir: Path, metrics, nj
):
    noisy_path = ref_dir / "wav.scp"
    if not noisy_path.is_file():
        raise MeritInputError(f"{noisy_path}: no such file (the noisy input)")
    tables = {}
    for path in (ref, noisy_path, hyp):
        tables[path] = read_kaldi(path)
        check_keys(tables[path], s.keys, path, allow_extra=path != hyp)
    names = tuple(m.name for m in metrics)
    cache_inputs = [ref, noisy_path]
    noisy = read_noisy_cache(ref_dir, cache_inputs, s.keys)
    lacking = tuple(m for m in names if m not in noisy.get(s.keys[0], {}))
    jobs = [
        (k, tables[ref][k], tables[noisy_path][k], tables[hyp][k], names, lacking)
        for k in s.keys
    ]
    results = score_waveforms(jobs, nj)
    if lacking:
        noisy = {
            k: {
                **noisy.get(k, {}),
                **{m: results[k][m + "_noisy"] for m in lacking},
            }
            for k in s.keys
        }
        write_noisy_cache(ref_dir, cache_inputs, noisy)
    scores: Dict[str, Dict] = {"enhanced": {}, "noisy": {}}
    nan_counts: Dict[str, Dict] = {"enhanced": {}, "noisy": {}}
    for kind, suffix in (("enhanced", ""), ("noisy", "_noisy")):
        for m in names:
            values = np.array(
                [results[k][m] if kind == "enhanced" else noisy[k][m] for k in s.keys]
            )
            s.columns[f"{task}_{m}{suffix}"] = values.tolist()
            bad = int(np.isnan(values).sum())
            nan_counts[kind][m] = bad
            if bad:
                logger.warning(
                    f"{s.summary['set']}: {m} ({kind}) undefined for {bad} of "
                    f"{len(s.keys)} utterances: excluded from its mean"
                )
            scores[kind][m] = float(np.nanmean(values)) if bad < len(values) else None
    s.summary["tasks"][task] = {
        **_head(target),
        "scores": scores["enhanced"],
        "noisy_scores": scores["noisy"],
        "nan_counts": nan_counts,
        "ssnr_definition": SSNR_DEFINITION,
    }
    s.inputs += [ref, noisy_path, hyp]


def _routing(s: _Set, tasks: Dict, ref_dir: Path, hyp_dir: Path) -> None:
    """Routing statistics per routed task (``espnet2_merit.scoring.routing``):
    expert shares, their entropy and the speech- vs noise-dominated difference,
    from ``routing/<task>_experts`` and the noisy and clean waveforms, and the
    mean number of experts per frame from ``routing/<task>_expert_count``
    (absent in decodings made before it was written)."""
    files = sorted((hyp_dir / "routing").glob("*_experts"))
    manifest = json.loads((hyp_dir / MANIFEST).read_text(encoding="utf-8"))
    shift_sec = manifest.get("frame_shift_sec")  # absent: written before it was
    clean_name = next(
        (t["file"] for t in tasks.values() if t["kind"] == "waveform"), "spk1.scp"
    )
    clean_path, noisy_path = ref_dir / clean_name, ref_dir / "wav.scp"
    if not files or shift_sec is None or not clean_path.is_file():
        return
    import torch  # only when there is routing to score (seconds to import)

    from espnet2_merit.scoring.routing import (
        routing_counts,
        routing_metrics,
        speech_dominated,
    )

    clean_table, noisy_table = read_kaldi(clean_path), read_kaldi(noisy_path)
    check_keys(clean_table, s.keys, clean_path, allow_extra=True)
    experts = {}  # task -> utt -> (1, T) first-choice experts
    for path in files:
        table = read_kaldi(path)
        check_keys(table, s.keys, path)
        try:
            experts[path.name[: -len("_experts")]] = {
                k: torch.tensor([[int(e) for e in table[k].split()]]) for k in s.keys
            }
        except ValueError:
            raise MeritInputError(f"{path}: expected expert indices") from None
        s.inputs.append(path)
    chosen = {}  # task -> utt -> (1, T) experts per frame
    for task, per_utt in experts.items():
        path = hyp_dir / "routing" / f"{task}_expert_count"
        if path.is_file():
            chosen[task] = _expert_counts(path, s.keys, per_utt)
            s.inputs.append(path)
    num = {  # experts per task: the largest index seen + 1
        t: max((int(x.max()) for x in u.values() if x.numel()), default=0) + 1
        for t, u in experts.items()
    }
    totals: Dict[str, Dict[str, float]] = {t: {} for t in experts}
    for k in s.keys:
        noisy, fs = _load(noisy_table[k], k, "noisy speech")
        clean, _ = _load(clean_table[k], k, "clean reference")
        for task, per_utt in experts.items():
            e = per_utt[k]
            speech = speech_dominated(
                torch.from_numpy(noisy)[None],
                torch.from_numpy(clean)[None],
                max(1, round(shift_sec * fs)),
                e.size(1),
            )
            counts = routing_counts(e, speech, num[task], chosen.get(task, {}).get(k))
            for name, v in counts.items():
                totals[task][name] = totals[task].get(name, 0.0) + float(v)
    s.summary["routing"] = {t: routing_metrics(c) for t, c in totals.items()}
    s.inputs += [clean_path, noisy_path]


def _expert_counts(path: Path, keys, experts: Dict) -> Dict:
    """``routing/<task>_expert_count`` -> utt -> (1, T) counts, one per frame of
    the utterance's ``_experts`` line."""
    import torch

    table = read_kaldi(path)
    check_keys(table, keys, path)
    out = {}
    for k in keys:
        try:
            counts = [int(c) for c in table[k].split()]
        except ValueError:
            raise MeritInputError(
                f"{path}: utterance '{k}': expected expert counts"
            ) from None
        if len(counts) != experts[k].size(1):
            raise MeritInputError(
                f"{path}: utterance '{k}' has {len(counts)} frames, its experts "
                f"line {experts[k].size(1)}"
            )
        out[k] = torch.tensor([counts])
    return out


def _head(target: Dict) -> Dict:
    return {k: target[k] for k in ("name", "kind", "file") if k in target}


def score_set(
    ref_dir: Path,
    hyp_dir: Path,
    out_dir: Path,
    nj: int = 1,
    metrics: Optional[Sequence[str]] = None,
    submission: Optional[str] = None,
    cross: Optional[CrossSpec] = None,
) -> Dict:
    """Score one decoded set; returns the summary (also written to out_dir).

    Args:
        ref_dir: The reference data directory (``dump/raw/<set>``).
        hyp_dir: The decoded set (``exp/<m>/decode/<set>``).
        out_dir: Where the scores go.
        nj: Processes for the per-utterance (waveform) metrics.
        metrics: Registered metric names to compute, ``"default"`` standing for
            every default one (``registry.selected``; None: the default ones).
        submission: A challenge format (``espnet2_merit.scoring.submission``):
            tasks without references are written as its submission files.
        cross: Label maps of a cross-corpus set: the task of ``emotion`` is
            scored over the shared classes (``cross_corpus``).
    """
    ref_dir, hyp_dir, out_dir = Path(ref_dir), Path(hyp_dir), Path(out_dir)
    for d, what in ((ref_dir, "--ref_dir"), (hyp_dir, "--hyp_dir")):
        if not d.is_dir():
            raise MeritInputError(f"{what}: no such directory {d}")
    registry.check_names(metrics)
    tasks = read_manifest(hyp_dir)
    key_file = ref_dir / "wav.scp"
    keys = sorted(read_kaldi(key_file))
    if not keys:
        raise MeritInputError(f"{key_file}: no utterances")
    s = _Set(keys, hyp_dir.name)
    s.inputs.append(key_file)
    for task, target in tasks.items():
        ref, hyp = ref_dir / target["file"], hyp_dir / target["file"]
        if not hyp.is_file():
            raise MeritInputError(
                f"{hyp}: no such file ({hyp_dir / MANIFEST} lists it)"
            )
        if not ref.is_file():
            logger.warning(
                f"{hyp_dir.name}: task '{task}' not scored: no references ({ref} "
                "does not exist)"
            )
            s.summary["tasks"][task] = {
                **_head(target),
                "unscored": f"no {ref}",
                "reference": str(ref.resolve()),
            }
            continue
        chosen = registry.metrics_of(target["kind"], metrics)
        if not chosen:  # --metrics names none of this kind
            s.summary["tasks"][task] = {**_head(target), "scores": {}}
            continue
        if target["kind"] == "label":
            _label_task(s, task, target, ref, hyp, chosen, cross)
        elif target["kind"] == "vector":
            _vector_task(s, task, target, ref, hyp, chosen)
        else:
            _waveform_task(s, task, target, ref, hyp, ref_dir, chosen, nj)
    _routing(s, tasks, ref_dir, hyp_dir)
    s.summary["options"] = options(metrics, submission, cross)
    s.summary["inputs"] = fingerprint(sorted(set(s.inputs + [hyp_dir / MANIFEST])))
    out_dir.mkdir(parents=True, exist_ok=True)
    unscored = {t: tasks[t] for t, r in s.summary["tasks"].items() if "unscored" in r}
    if submission and unscored:
        from espnet2_merit.scoring.submission import write_submissions

        for path in write_submissions(hyp_dir, out_dir, unscored, keys, submission):
            logger.info(f"{hyp_dir.name}: wrote the submission file {path}")
            task = path.stem[len("submission_") :]
            s.summary["tasks"][task]["submission"] = str(path.name)
    atomic_write_text(out_dir / "per_utt.tsv", _per_utt_text(s.columns))
    from espnet2_merit.scoring.plots import plot_confusion

    for task, result in s.summary["tasks"].items():
        if result.get("kind") == "label" and "details" in result:
            title = f"{hyp_dir.name}, {task}"
            plot_confusion(result["details"], out_dir / f"confusion_{task}.png", title)
    summary = _finite_or_none(s.summary)
    # summary.json last: its presence marks a complete score directory.
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


def options(
    metrics: Optional[Sequence[str]],
    submission: Optional[str] = None,
    cross: Optional[CrossSpec] = None,
) -> Dict:
    """The options a score depends on: the metrics computed, resolved against the
    registry (``registry.selected``: so a metric added to it, or a changed
    selection, makes earlier scores out of date), and the submission format."""
    out = {"metrics": registry.selected(metrics), "submission": submission}
    if cross is not None:  # absent otherwise: earlier scores stay current
        out["cross_corpus"] = cross.options()
    return out


def up_to_date(
    out_dir: Path,
    metrics: Optional[Sequence[str]] = None,
    submission: Optional[str] = None,
    cross: Optional[CrossSpec] = None,
) -> bool:
    """True when out_dir holds a complete score made with the same options from
    unchanged inputs."""
    try:
        summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
        if summary.get("options") != options(metrics, submission, cross):
            return False
        for result in summary["tasks"].values():
            if (
                "submission" in result
                and not (out_dir / result["submission"]).is_file()
            ):
                return False
        files = [Path(p) for p in summary["inputs"]]
        if not (out_dir / "per_utt.tsv").is_file():
            return False
        for task, result in summary["tasks"].items():
            if "details" in result and result.get("kind") == "label":
                if not (out_dir / f"confusion_{task}.png").is_file():
                    return False
            # A task skipped for want of references: scored once they appear.
            if "unscored" in result and Path(result["reference"]).exists():
                return False
        return (
            all(p.is_file() for p in files) and fingerprint(files) == summary["inputs"]
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def task_value(summary: Dict, task: str, metric: str, noisy: bool = False):
    """A scored task's value of a registered metric (None if absent)."""
    result = summary.get("tasks", {}).get(task, {})
    return result.get("noisy_scores" if noisy else "scores", {}).get(metric)


def one_line(summary: Dict) -> str:
    """A set's headline scores in one line (for logs)."""
    parts = [f"{summary['num_utts']} utts"]
    for task, result in summary.get("tasks", {}).items():
        if "scores" not in result:
            parts.append(f"{task} not scored")
            continue
        for m in registry.metrics_of(result["kind"], every=True):
            value = result["scores"].get(m.name)
            if not m.headline or value is None:
                continue
            text = f"{task} {m.name} {value:.{m.digits}f}"
            noisy = result.get("noisy_scores", {}).get(m.name)
            parts.append(
                text + (f" (noisy {noisy:.{m.digits}f})" if noisy is not None else "")
            )
    return ", ".join(parts)


def headline_columns(summaries: Iterable[Dict]) -> List[Tuple[str, "registry.Metric"]]:
    """(task, headline metric) pairs of the scored tasks that some of
    ``summaries`` has a value for; tasks in order of first appearance."""
    summaries = list(summaries)
    tasks: Dict[str, str] = {}
    for summary in summaries:
        for task, result in summary.get("tasks", {}).items():
            if "scores" in result:
                tasks.setdefault(task, result["kind"])
    return [
        (task, m)
        for task, kind in tasks.items()
        for m in registry.metrics_of(kind, every=True)
        if m.headline
        and any(task_value(s, task, m.name) is not None for s in summaries)
    ]
