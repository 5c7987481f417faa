"""``RESULTS.md`` of an experiment: one table per test set and noise set, a row
per SNR, the columns of the registered metrics of every scored task
(``espnet2_merit.scoring.registry``), and the expert usage per routed task.

Set names carry the conditions: ``<test>_<noise>_snr<snr>`` (stage 2's noisy test
sets) and ``<test>_rir<rooms>_<noise>_snr<snr>`` for reverberant ones (rooms: the
RIR pool, ``seen`` or ``unseen`` room types). Reverberant sets get tables of their
own, and a "dry vs reverberant" table per test and noise set puts the dry and
reverberant sets of the same SNRs side by side."""

import datetime
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from espnet2_merit.errors import MeritInputError
from espnet2_merit.scoring import registry
from espnet2_merit.scoring.plots import plot_usage
from espnet2_merit.scoring.se import SSNR_DEFINITION
from espnet2_merit.scoring.ser import ICBHI_DEFINITION, ICBHI_NAMES
from espnet2_merit.scoring.set_scoring import read_floats, task_value
from espnet2_merit.utils.datadir import atomic_write_text, read_kaldi

SET_PATTERN = re.compile(r"^(?P<test>.+)_(?P<noise>[^_]+)_snr(?P<snr>-?\d+(?:\.\d+)?)$")
ROOMS_PATTERN = re.compile(r"^(?P<test>.+)_rir(?P<rooms>[^_]+)$")


def parse_set_name(name: str) -> Optional[Tuple[str, str, float]]:
    """``test1_seen_snr-5`` -> ("test1", "seen", -5.0); None if not that form."""
    m = SET_PATTERN.match(name)
    return (m["test"], m["noise"], float(m["snr"])) if m else None


def split_rooms(test: str) -> Tuple[str, Optional[str]]:
    """The test part of a set name -> (test set, rooms): ``test1_rirseen`` ->
    ("test1", "seen"); ``test1`` -> ("test1", None), dry speech."""
    m = ROOMS_PATTERN.match(test)
    return (m["test"], m["rooms"]) if m else (test, None)


def rooms_text(rooms: Optional[str]) -> str:
    """``None`` -> "dry"; ``"seen"`` -> "seen rooms"."""
    return "dry" if rooms is None else f"{rooms} rooms"


def group_title(test: str, noise: str) -> str:
    """Heading of a (test, noise) group: ``test1, seen noise`` or, reverberant,
    ``test1, reverberant (unseen rooms), seen noise``."""
    base, rooms = split_rooms(test)
    if rooms is None:
        return f"{test}, {noise} noise"
    return f"{base}, reverberant ({rooms_text(rooms)}), {noise} noise"


def format_snr(snr: float) -> str:
    return f"{snr:g}"


def _fmt(value, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


Column = Tuple[str, callable, int]  # header, getter from a summary, digits


def scored_tasks(summaries: Iterable[Dict]) -> Dict[str, str]:
    """{task: kind} of the tasks some summary has scores for: label tasks first,
    then vector and waveform ones (config order within a kind)."""
    tasks: Dict[str, str] = {}
    for summary in summaries:
        for task, result in summary.get("tasks", {}).items():
            if "scores" in result:
                tasks.setdefault(task, result["kind"])
    order = ("label", "vector", "waveform")
    return dict(sorted(tasks.items(), key=lambda item: order.index(item[1])))


def result_columns(summaries: Dict[str, Dict]) -> List[Column]:
    """Columns of the scored tasks: every registered metric of each task's kind
    (waveform ones for the enhanced output and the noisy input), label tasks
    first, then vector and waveform tasks (config order within a kind). Task
    names prefix the headers when two tasks share a kind."""
    tasks = scored_tasks(summaries.values())
    kinds = list(tasks.values())
    columns: List[Column] = [("utts", lambda s: s.get("num_utts"), 0)]
    for task, kind in tasks.items():
        prefix = f"{task} " if kinds.count(kind) > 1 else ""
        # Every row: a column no set has a value for is left out of the table.
        for m in registry.metrics_of(kind, every=True):
            if kind == "waveform":
                for noisy, short in ((False, "enh"), (True, "noisy")):
                    columns.append(
                        (
                            f"{prefix}{m.header} {short}",
                            lambda s, t=task, n=m.name, z=noisy: task_value(s, t, n, z),
                            m.digits,
                        )
                    )
            else:
                columns.append(
                    (
                        f"{prefix}{m.header}",
                        lambda s, t=task, n=m.name: task_value(s, t, n),
                        m.digits,
                    )
                )
    return columns


def markdown_table(header: List[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def load_summaries(decode_dir: Path) -> Dict[str, Dict]:
    """{set name: summary} of every ``<decode_dir>/<set>/score/summary.json``."""
    out = {}
    for path in sorted(decode_dir.glob("*/score/summary.json")):
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise MeritInputError(f"{path}: not valid JSON: {e}") from e
        if not isinstance(summary, dict) or not isinstance(summary.get("tasks"), dict):
            # Written before scores were kept per task: its numbers would be
            # silently missing from every table.
            raise MeritInputError(
                f"{path}: no 'tasks' (an older format); score the set again "
                "(merit_score --force)"
            )
        out[path.parent.parent.name] = summary
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


def _results_table(summaries: Dict[str, Dict], rows: List[Tuple], first):
    """Markdown table; ``rows`` are (first-column text, set name), or (texts of
    the leading columns, set name) with ``first`` a list of their headers; columns
    that no row has are left out."""
    cols = [
        c
        for c in result_columns({s: summaries[s] for _, s in rows})
        if any(c[1](summaries[s]) is not None for _, s in rows)
    ]

    def lead(label) -> List[str]:
        return [label] if isinstance(label, str) else list(label)

    body = [
        lead(label) + [_fmt(get(summaries[s]), d) for _, get, d in cols]
        for label, s in rows
    ]
    return markdown_table(lead(first) + [c[0] for c in cols], body)


def reverberation_rows(groups) -> Dict[Tuple[str, str], List[Tuple[Tuple, str]]]:
    """{(test, noise): [((rooms text, SNR text), set name)]} for every test and
    noise set with reverberant sets: at each SNR of those, the dry set (when
    scored) and the reverberant ones, dry first."""
    by_base: Dict[Tuple[str, str], Dict] = defaultdict(dict)
    for (test, noise), sets in groups.items():
        base, rooms = split_rooms(test)
        for snr, name in sets:
            by_base[(base, noise)].setdefault(snr, {})[rooms] = name
    out = {}
    for key, per_snr in sorted(by_base.items()):
        if not any(r is not None for sets in per_snr.values() for r in sets):
            continue
        rows = []
        for snr, sets in sorted(per_snr.items()):
            if set(sets) == {None}:
                continue  # an SNR without reverberant sets
            order = sorted(sets, key=lambda r: (r is not None, r or ""))
            rows += [((rooms_text(r), format_snr(snr)), sets[r]) for r in order]
        out[key] = rows
    return out


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


def write_results(
    exp_dir: Path, decode_dir: Optional[Path] = None, note: Optional[str] = None
) -> str:
    """Collect the scored sets of an experiment into ``RESULTS.md`` (and
    expert-usage images under ``images/``) of :func:`results_dir`, with ``note``
    (markdown: what a recipe's results can and cannot show) under "About these
    results". Returns the tables."""
    exp_dir = Path(exp_dir)
    out_dir = results_dir(exp_dir, decode_dir)
    decode_dir = Path(decode_dir) if decode_dir else exp_dir / "decode"
    summaries = load_summaries(decode_dir)
    if not summaries:
        raise MeritInputError(
            f"{decode_dir}: no scored set (*/score/summary.json); run merit_score first"
        )
    # Another corpus's sets scored through label maps: tables of their own.
    cross = {n: s for n, s in summaries.items() if "cross_corpus" in s}
    groups, other = group_sets(n for n in summaries if n not in cross)
    tables = []
    # dry groups first, then the reverberant ones
    for (test, noise), sets in sorted(
        groups.items(), key=lambda kv: split_rooms(kv[0][0])[1] is not None
    ):
        rows = [(format_snr(snr), name) for snr, name in sets]
        table = _results_table(summaries, rows, "SNR (dB)")
        tables.append(f"### {group_title(test, noise)}\n\n{table}")
    for (test, noise), rows in reverberation_rows(groups).items():
        table = _results_table(summaries, rows, ["rooms", "SNR (dB)"])
        tables.append(f"### {test}, {noise} noise: dry vs reverberant\n\n{table}")
    if other:
        rows = [(name, name) for name in other]
        tables.append(f"### Other sets\n\n{_results_table(summaries, rows, 'set')}")
    tables += cross_tables({n: summaries[n] for n in cross})
    main_tables = "\n\n".join(tables)

    usage_text = _usage_section(out_dir, decode_dir, groups, summaries)
    scored = {}  # task -> its result in some set (kind, classes, names)
    # The model's own sets first: a cross-corpus set's classes are the shared ones.
    for summary in sorted(summaries.values(), key=lambda s: "cross_corpus" in s):
        for task, result in summary.get("tasks", {}).items():
            if "scores" in result:
                scored.setdefault(task, result)
    metric_lines = []
    for task, result in scored.items():
        kind, details = result["kind"], result.get("details", {})
        if kind == "label":
            metric_lines.append(
                f"- `{task}` ({result.get('name')}): F1-macro (headline; every class "
                "of the list counts), F1-micro, accuracy, macro precision and recall "
                f"(scikit-learn); classes {', '.join(details.get('classes', []))}."
            )
            if any(n in result["scores"] for n in ICBHI_NAMES):
                metric_lines.append(f"  {ICBHI_DEFINITION}")
            if cross:
                metric_lines.append(f"  Cross-corpus sets: {CROSS_DEFINITION}")
        elif kind == "vector":
            names = ", ".join(details.get("ccc", {}))
            metric_lines.append(
                f"- `{task}` ({result.get('name')}): CCC mean, the concordance "
                f"correlation of each value ({names}), averaged."
            )
        else:
            metric_lines += [
                f"- `{task}` ({result.get('name')}): {SSNR_DEFINITION}",
                *(
                    [
                        "  Reverberant sets (`<test>_rir<rooms>_...`): the noisy "
                        "input is reverberant, the SNR is that of the reverberant "
                        "speech, and the clean reference is stage 2's "
                        "`--rir_reference` (the dry speech, or its direct path + "
                        "early reflections); `noisy` scores therefore count the "
                        "reverberation as distortion."
                    ]
                    if any(split_rooms(t)[1] for t, _ in groups)
                    else []
                ),
                "  PESQ: wide-band (P.862.2, `pesq` package, 16 kHz). STOI: classic "
                "(`pystoi`). SI-SDR: zero-mean, scale-invariant (dB). `enh`: the "
                "model's enhanced output; `noisy`: the unprocessed input, both "
                "against the clean reference. Means over utterances; an utterance "
                "where PESQ/STOI is undefined is left out of that mean (counted in "
                "summary.json).",
            ]
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
        *(["## About these results", "", note.strip(), ""] if note else []),
        "## Metrics",
        "",
        *metric_lines,
        "- Per-utterance scores and confusion matrices: "
        f"`{decode_dir.name}/<set>/score/"
        "{per_utt.tsv,summary.json,confusion_<task>.png}`.",
        "",
        "## Results",
        "",
        main_tables,
    ]
    if usage_text:
        text += ["", usage_text]
    atomic_write_text(out_dir / "RESULTS.md", "\n".join(text) + "\n")
    return main_tables


CROSS_DEFINITION = (
    "the references through the test corpus's label map and the predictions "
    "through the model's, over the shared classes: the predicted class is the "
    "shared class whose model classes have the largest summed posterior (a model "
    "class that is not mapped is never predicted); utterances whose reference "
    "class is not mapped are left out of the label scores (counted below each "
    "table), and scored in full by the other tasks."
)


def cross_tables(summaries: Dict[str, Dict]) -> List[str]:
    """Markdown sections of cross-corpus sets (summaries with ``cross_corpus``):
    per test corpus and maps, its sets grouped as the model's own, titled with
    the corpus and the maps, with the utterances left out per set."""
    from espnet2_merit.scoring.cross_corpus import PREFIX, title

    by_maps: Dict[str, List[str]] = defaultdict(list)
    for name, summary in summaries.items():
        by_maps[json.dumps(summary["cross_corpus"], sort_keys=True)].append(name)
    out = []
    for key, names in sorted(by_maps.items()):
        cross = json.loads(key)
        corpus = cross.get("corpus") or "another corpus"
        strip = f"{PREFIX}{cross['corpus']}_" if cross.get("corpus") else PREFIX
        short = {n: n[len(strip) :] if n.startswith(strip) else n for n in names}
        groups, other = group_sets(short.values())
        full = {v: k for k, v in short.items()}
        sections = []
        for (test, noise), sets in groups.items():
            rows = [(format_snr(snr), full[n]) for snr, n in sets]
            sections.append((group_title(test, noise), rows, "SNR (dB)"))
        if other:
            sections.append(("other sets", [(n, full[n]) for n in other], "set"))
        for heading, rows, first in sections:
            left = []
            for label, name in rows:
                for task, result in summaries[name].get("tasks", {}).items():
                    if result.get("left_out"):
                        counts = ", ".join(
                            f"{c} {n}" for c, n in result["left_out"].items()
                        )
                        where = f"{label} dB" if first == "SNR (dB)" else label
                        left.append(f"{where}: {counts} ({task})")
            note = (
                "Left out (class not mapped): " + "; ".join(left) + "."
                if left
                else "No utterance left out."
            )
            out.append(
                f"### Cross-corpus ({corpus}): {heading}\n\n{title(cross)}.\n\n"
                f"{_results_table(summaries, rows, first)}\n\n{note}"
            )
    return out


ROUTING_COLUMNS = (  # summary["routing"][task] key -> column
    ("usage_entropy", "entropy"),
    ("speech_noise_tv", "speech/noise TV"),
    ("mean_experts", "experts/frame"),
)


def _usage_section(out_dir: Path, decode_dir: Path, groups, summaries) -> str:
    """Expert usage per task and SNR: a table (with the routing statistics the
    scoring stage computed) and a bar chart per test/noise set."""
    parts = []
    tasks = sorted(
        {p.name[: -len("_usage")] for p in decode_dir.glob("*/routing/*_usage")}
    )
    for task in tasks:
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
            plot_usage(
                usage, image, f"{task.upper()} expert usage, {group_title(test, noise)}"
            )
            num = widths.pop()
            routed = {
                snr: summaries.get(name, {}).get("routing", {}).get(task, {})
                for snr, name in sets
            }
            cols = [
                c for c in ROUTING_COLUMNS if any(c[0] in r for r in routed.values())
            ]
            rows = [
                [format_snr(snr)]
                + [f"{v:.3f}" for v in u]
                + [_fmt(routed[snr].get(key), 3) for key, _ in cols]
                for snr, u in usage.items()
            ]
            table = markdown_table(
                ["SNR (dB)"]
                + [f"expert {i}" for i in range(num)]
                + [header for _, header in cols],
                rows,
            )
            parts.append(
                f"### {task.upper()} task, {group_title(test, noise)}\n\n{table}\n\n"
                f"![{task} expert usage]({image.relative_to(out_dir)})"
            )
    if not parts:
        return ""
    head = (
        "## Expert usage\n\nShare of frames routed to each expert (top-1), the mean "
        "over utterances of each utterance's share. entropy: of the set's expert "
        "shares over all frames, divided by log E (1 = uniform, 0 = one expert). "
        "speech/noise TV: total variation distance between the expert shares of "
        "speech-dominated frames (clean energy above the noise's in the frame) and "
        "noise-dominated ones (0 = routed alike, 1 = disjoint experts); in a "
        "reverberant set the reverberation beyond the reference counts as noise. "
        "experts/frame: mean number of routed experts per frame (shared experts "
        "not counted; varies with top-p routing)."
    )
    return "\n\n".join([head] + parts)


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
