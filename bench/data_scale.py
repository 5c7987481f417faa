#!/usr/bin/env python3
"""Data preparation at scale: the recipe's stages 1-5 (``merit.sh``) on an
MSP-Podcast-format corpus of N = 1,000, 10,000 and 100,000 utterances, and the
inference and scoring bookkeeping on 1,000 and 100,000 entries.

The corpus is the mini recipe's layout (``local/make_mini_msp_podcast.py``: its
``plan`` names the files and label rows, its ``write_labels`` writes
``Labels/labels_consensus.csv``), 70/15/15 % Train/Development/Test1 plus its 5 %
of O/X rows that stage 1 excludes; every ``Audios/*.wav`` is a hard link to one of
``--clips`` generated clips of 1.0-1.2 s at 16 kHz, so the corpus takes a few
hundred kB whatever N. The noise is the mini recipe's generated noise without
babble (espeak-ng), ``cafe`` held out as the unseen type.

Each stage runs as users run it, ``merit.sh --stage K --stop_stage K`` with the
mini recipe's options (``--test_snrs``, default one SNR per noise set, bounds the
number of noisy test copies stage 2 writes), in a recipe directory that links the
TEMPLATE's scripts and the MSP-Podcast recipe's ``local/data.sh``. Per stage: wall
time, peak RSS (ru_maxrss: the largest process of the stage's tree, measured
through a small parent process, since Linux carries a high-water mark over fork
and exec), disk growth of the recipe directory (``du``), time per utterance and
its ratio to the smallest N, and the marginal time and RSS per utterance between
consecutive sizes (fixed costs cancel out).

The bookkeeping, each operation in a fresh process, the time of the call alone
(no imports; the median of repeated warm calls), then the peak of what a call
allocates (tracemalloc): splitting ``all.scp`` (keys ``<set>__<utt>``) into 8 inference
shards (``recipe.split.split_keys``, stage 9), merging the 8 shards of two test
sets back into decode directories (``inference.merge.merge``; the shards are
written by ``inference.decode_dir.write_result`` and ``manifest``, as a decode
job writes them, from made-up results: no model runs), scoring both sets' emotion
class and attribute tasks (``scoring.set_scoring.score_set``, stage 10), and
writing and reading the noisy-input score cache (``noisy_scores.json``) of a set.

    .venv/bin/python bench/data_scale.py --out bench/results/data_scale.md  # 12-17 min
    .venv/bin/python bench/data_scale.py --sizes 1000 --bookkeeping_sizes 1000
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MINI = REPO / "egs2" / "mini_msp_podcast" / "merit1"
MSP = REPO / "egs2" / "msp_podcast" / "merit1"
TEMPLATE = REPO / "egs2" / "TEMPLATE" / "merit1"
sys.path.insert(0, str(MINI / "local"))
sys.path.insert(0, str(REPO / "bench"))
from tables import publish  # noqa: E402

FS = 16000
CLIP_SEC = (1.0, 1.2)
SHARES = (0.70, 0.15, 0.15)  # Train, Development, Test1
NOISE_TYPES = ("white", "pink", "brown", "hum", "traffic", "cafe")
UNSEEN = "cafe"
STAGES = {
    1: "1 data preparation",
    2: "2 noise simulation",
    3: "3 audio formatting",
    4: "4 duration filtering",
    5: "5 label list",
}
TRAIN_CONFIG = MINI / "conf" / "tuning" / "train_sparse_merit_tiny.yaml"
NUM_SHARDS = 8
SETS = ("test1_seen_snr-5", "test1_unseen_snr-5")
CLASSES = ("A", "S", "H", "N")
ATTRIBUTES = ("arousal", "valence", "dominance")
FRAMES = 50  # routing frames of a 1 s utterance at 50 Hz
MIN_CALLS, MIN_TIMED_SEC = 3, 0.5  # timed calls per operation run, after a warm one
OPERATIONS = {
    "split": "split all.scp into 8 shards (stage 9)",
    "merge": "merge 8 decode shards into 2 sets (stage 9)",
    "score": "score 2 sets, class + attributes (stage 10)",
    "cache_write": "write the noisy-score cache (stage 10)",
    "cache_read": "read the noisy-score cache (stage 10)",
}


# ------------------------------------------------------------------ the corpus
def split_sizes(n: int) -> List[int]:
    """(Train, Development, Test1) utterances of the A/S/H/N classes for N."""
    train, dev = round(SHARES[0] * n), round(SHARES[1] * n)
    return [train, dev, n - train - dev]


def make_clips(outdir: Path, num: int, seed: int = 0) -> List[Path]:
    """``num`` harmonic-voice clips of 1.0-1.2 s (16-bit, 16 kHz)."""
    from espnet2_merit.utils.datadir import write_audio
    from espnet2_merit.utils.synthetic import voice

    rng = np.random.default_rng(seed)
    outdir.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(num):
        sec = CLIP_SEC[0] + (CLIP_SEC[1] - CLIP_SEC[0]) * i / max(1, num - 1)
        wav = voice(CLASSES[i % 4], sec, FS, rng).astype(np.float64)
        wav = 0.5 * wav / np.abs(wav).max() + 1e-3 * rng.standard_normal(len(wav))
        path = outdir / f"clip_{i:03d}.wav"
        write_audio(path, wav, FS, "PCM_16")
        clips.append(path)
    return clips


def make_corpus(root: Path, n: int, clips: Sequence[Path], seed: int = 0) -> int:
    """The MSP-Podcast layout under ``root`` for N labelled utterances, audio hard
    linked to ``clips``; returns the number of label rows (O/X rows included)."""
    import make_mini_msp_podcast as mini  # the mini recipe's layout

    jobs, rows = mini.plan(root.resolve(), split_sizes(n), seed)
    (root / "Audios").mkdir(parents=True, exist_ok=True)
    for i, job in enumerate(jobs):
        os.link(clips[i % len(clips)], job.path)
    mini.write_labels(root, rows)
    return len(rows)


def make_noise(root: Path) -> Path:
    """The mini recipe's generated noise types (not babble: no espeak-ng)."""
    import make_mini_noise

    make_mini_noise.generate(root, 10, ",".join(NOISE_TYPES), seed=0, nj=2)
    return root


def make_recipe(recipe: Path, corpus: Path, noise: Path) -> List[str]:
    """A recipe directory: the TEMPLATE's scripts, the MSP-Podcast recipe's
    ``local/data.sh`` and a ``db.sh`` naming the corpus and the noise; returns
    the seen and the unseen noise directories (as run.sh passes them on)."""
    (recipe / "local").mkdir(parents=True)
    for name in ("merit.sh", "path.sh", "cmd.sh", "scripts"):
        (recipe / name).symlink_to(TEMPLATE / name)
    for name in ("data.sh", "msp_podcast_data.py"):
        (recipe / "local" / name).symlink_to((MSP / "local" / name).resolve())
    seen = " ".join(str(noise / t) for t in NOISE_TYPES if t != UNSEEN)
    unseen = str(noise / UNSEEN)
    (recipe / "db.sh").write_text(
        f'MSP_PODCAST="{corpus}"\nNOISE_SEEN_DIRS="{seen}"\n'
        f'NOISE_UNSEEN_DIRS="{unseen}"\n'
    )
    return [seen, unseen]


def recipe_options(noise_dirs: List[str], nj: int, test_snrs: str) -> List[str]:
    """The mini recipe's run.sh options (with the MSP-Podcast data preparation)."""
    return [
        "--local_data_opts", "--classes 4 --splits Train,Development,Test1",
        "--noise_seen_dirs", noise_dirs[0], "--noise_unseen_dirs", noise_dirs[1],
        "--train_set", "train", "--valid_set", "dev", "--test_sets", "test1",
        "--train_snr", "5", "--test_snrs", test_snrs,
        "--min_sec", "1.0", "--max_sec", "20.0",
        "--train_config", str(TRAIN_CONFIG),
        "--ngpu", "0", "--nj", str(nj), "--inference_nj", str(nj),
    ]  # fmt: skip


def disk_kb(path: Path) -> int:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True)
    return int(out.stdout.split()[0])


# A fresh, small process between the benchmark and what it measures: a child's
# ru_maxrss starts at the RSS of the process it was forked from (Linux keeps the
# high-water mark across fork and exec), and this one's is a few MB.
MEASURE = """
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc)
"""


def measured(cmd: List[str], cwd: Path, stdout, log: Path) -> Dict:
    """Run ``cmd``: wall seconds and the peak RSS (MB) of the largest process of
    its tree (ru_maxrss, RUSAGE_CHILDREN of the small process that runs it)."""
    env = dict(
        os.environ,
        MERIT_PYTHON=sys.executable,
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")])
        ),
    )
    rss_file = log.with_name(log.name + ".maxrss")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-S", "-c", MEASURE, str(rss_file), *cmd],
        cwd=cwd,
        stdout=stdout,
        stderr=subprocess.STDOUT if stdout is not subprocess.PIPE else subprocess.PIPE,
        env=env,
        text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log.read_text()[-3000:] if log.is_file() else proc.stderr[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}")
    rss_mb = int(rss_file.read_text()) / 1024
    rss_file.unlink()
    return {"seconds": seconds, "rss_mb": rss_mb, "stdout": proc.stdout}


def run_stage(recipe: Path, stage: int, options: List[str], log: Path) -> Dict:
    """One ``merit.sh`` stage: wall seconds, peak RSS (MB) of its largest
    process, disk growth (MB) of the recipe directory."""
    cmd = ["bash", "./merit.sh", *options, "--stage", str(stage)]
    cmd += ["--stop_stage", str(stage)]
    before = disk_kb(recipe)
    with open(log, "w") as f:
        out = measured(cmd, recipe, f, log)
    return {
        "seconds": out["seconds"],
        "rss_mb": out["rss_mb"],
        "disk_mb": (disk_kb(recipe) - before) / 1024,
    }


def pipeline(work: Path, n: int, clips, noise, args) -> Dict[int, Dict]:
    """Corpus and recipe for N, then stages 1-5 one by one; removed afterwards."""
    root = work / f"n{n}"
    shutil.rmtree(root, ignore_errors=True)
    rows = make_corpus(root / "corpus", n, clips)
    noise_dirs = make_recipe(root / "recipe", root / "corpus", noise)
    options = recipe_options(noise_dirs, args.nj, args.test_snrs)
    out = {}
    for stage in args.stages:
        out[stage] = run_stage(
            root / "recipe", stage, options, root / f"stage{stage}.log"
        )
        print(
            f"N={n} ({rows} rows) stage {stage}: {out[stage]['seconds']:.1f} s, "
            f"{out[stage]['rss_mb']:.0f} MB, +{out[stage]['disk_mb']:.1f} MB",
            flush=True,
        )
    if not args.keep:
        shutil.rmtree(root)
    return out


# ------------------------------------------------------------- the bookkeeping
def _stub_decoder():
    """What ``decode_dir.write_result`` and ``manifest`` read of a
    Speech2EmotionEnhance: the heads' targets, the fusion's expert count, the
    frame shift."""
    from espnet2_merit.merit.heads.targets import LabelTarget, VectorTarget

    heads = {
        "ser": SimpleNamespace(target=LabelTarget("emotion", CLASSES)),
        "attr": SimpleNamespace(target=VectorTarget("emotion_attr", ATTRIBUTES)),
    }
    model = SimpleNamespace(
        heads=heads,
        fusion=SimpleNamespace(num_experts=3),
        frontend=SimpleNamespace(frame_shift=lambda: 320),
    )
    return SimpleNamespace(model=model, tasks=list(heads), fs=FS)


def make_bookkeeping(d: Path, n: int, seed: int = 0) -> None:
    """Inputs of the operations for N entries: reference dirs of the two sets,
    ``all.scp``, its 8 shards' decode outputs (written by the decode job's own
    writer), the merged decode dirs, and a cache set of N utterances."""
    from espnet2_merit.inference.decode_dir import (
        MANIFEST,
        AtomicTextFiles,
        manifest,
        write_result,
    )
    from espnet2_merit.inference.merge import SEP, merge
    from espnet2_merit.inference.results import EmotionEnhanceResult, Routes, TaskResult
    from espnet2_merit.recipe.split import split_keys
    from espnet2_merit.scoring import registry
    from espnet2_merit.scoring.set_scoring import write_noisy_cache
    from espnet2_merit.utils.datadir import atomic_write_text, write_kaldi

    rng = np.random.default_rng(seed)
    per_set = n // len(SETS)
    utts = [f"MSP-PODCAST_{i // 100:04d}_{i % 100:04d}" for i in range(per_set)]
    for dset in SETS:
        ref = d / "ref" / dset
        write_kaldi(ref / "wav.scp", {u: f"/data/{dset}/{u}.wav" for u in utts})
        write_kaldi(ref / "emotion", {u: CLASSES[rng.integers(4)] for u in utts})
        attrs = rng.uniform(1, 7, (per_set, 3))
        write_kaldi(
            ref / "emotion_attr",
            {u: " ".join(f"{x:.1f}" for x in a) for u, a in zip(utts, attrs)},
        )
    lines = sorted(f"{s}{SEP}{u} /data/{s}/{u}.wav\n" for s in SETS for u in utts)
    atomic_write_text(d / "all.scp", "".join(lines))
    num = split_keys(d / "all.scp", NUM_SHARDS, d / "keys")
    stub = _stub_decoder()
    shards = []
    for j in range(1, num + 1):
        out = d / "shards" / f"output.{j}"
        out.mkdir(parents=True)
        text = AtomicTextFiles(out)
        for key in (d / "keys" / f"keys.{j}").read_text().split():
            probs = rng.dirichlet(np.ones(4))
            experts = rng.integers(3, size=(FRAMES, 1))
            res = EmotionEnhanceResult(
                fs=FS,
                tasks={
                    "ser": TaskResult("label", "emotion", probs, list(CLASSES)),
                    "attr": TaskResult(
                        "vector", "emotion_attr", rng.uniform(1, 7, 3), list(ATTRIBUTES)
                    ),
                },
                routes={
                    "ser": Routes(
                        experts,
                        rng.uniform(0.3, 1, (FRAMES, 1)),
                        np.arange(FRAMES) * 0.02,
                    )
                },
            )
            write_result(text, out, key, res, stub)
        atomic_write_text(
            out / MANIFEST, json.dumps(manifest(stub, text.commit()), indent=2) + "\n"
        )
        shards.append(out)
    merge(shards, SETS, d / "decode")
    # The cache of one set of N utterances (SE metrics of the noisy input).
    cache = d / "cache_ref"
    keys = [f"utt{i:07d}" for i in range(n)]
    write_kaldi(cache / "wav.scp", {k: f"/data/noisy/{k}.wav" for k in keys})
    write_kaldi(cache / "spk1.scp", {k: f"/data/clean/{k}.wav" for k in keys})
    names = [m.name for m in registry.metrics_of("waveform")]
    scores = {
        k: dict(zip(names, map(float, rng.normal(size=len(names))))) for k in keys
    }
    write_noisy_cache(cache, [cache / "spk1.scp", cache / "wav.scp"], scores)
    (d / "cache_metrics.json").write_text(json.dumps(names))


def operation(name: str, d: Path) -> Dict:
    """Run one operation on the inputs in ``d`` (in this fresh process, which
    imports what the operation's command imports): seconds of a call (the median
    of at least MIN_CALLS calls and MIN_TIMED_SEC seconds, after a warm-up call)
    and the peak of what one call allocates (MB, tracemalloc)."""
    import tracemalloc

    cache = d / "cache_ref"
    inputs = [cache / "spk1.scp", cache / "wav.scp"]
    if name == "split":
        from espnet2_merit.recipe.split import split_keys

        def call():
            split_keys(d / "all.scp", NUM_SHARDS, d / "split_out")

    elif name == "merge":
        from espnet2_merit.inference.merge import merge

        shards = sorted((d / "shards").iterdir())

        def call():
            merge(shards, SETS, d / "merged")

    elif name == "score":
        from espnet2_merit.scoring.plots import plot_confusion  # noqa: F401
        from espnet2_merit.scoring.set_scoring import score_set

        def call():
            for dset in SETS:
                score_set(d / "ref" / dset, d / "decode" / dset, d / "score" / dset)

    elif name == "cache_write":
        from espnet2_merit.scoring.set_scoring import write_noisy_cache
        from espnet2_merit.utils.datadir import read_kaldi

        names = json.loads((d / "cache_metrics.json").read_text())
        rng = np.random.default_rng(1)
        scores = {
            k: dict(zip(names, map(float, rng.normal(size=len(names)))))
            for k in sorted(read_kaldi(cache / "wav.scp"))
        }

        def call():
            write_noisy_cache(cache, inputs, scores)

    elif name == "cache_read":
        from espnet2_merit.scoring.set_scoring import read_noisy_cache
        from espnet2_merit.utils.datadir import read_kaldi

        names = json.loads((d / "cache_metrics.json").read_text())
        keys = sorted(read_kaldi(cache / "wav.scp"))

        def call():
            got = read_noisy_cache(cache, inputs, keys)
            if len(got) != len(keys) or set(got[keys[0]]) != set(names):
                raise RuntimeError("the noisy-score cache did not read back")

    else:
        raise ValueError(f"unknown operation {name!r}")
    call()  # warm: the file cache, matplotlib's first figure
    times: List[float] = []
    begin = time.perf_counter()
    while len(times) < MIN_CALLS or (
        time.perf_counter() - begin < MIN_TIMED_SEC and len(times) < 100
    ):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    # Again under tracemalloc (slower, so not timed): what the call allocates
    # (Python objects and numpy arrays), whatever the imports took.
    tracemalloc.start()
    call()
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"seconds": seconds, "traced_mb": traced / 2**20}


def run_operation(name: str, d: Path) -> Dict:
    """One operation in a fresh process (:func:`operation`); its peak RSS is the
    process's (imports included)."""
    cmd = [sys.executable, __file__, "--operation", name, "--operation_dir", str(d)]
    out = measured(cmd, d, subprocess.PIPE, d / f"{name}.log")
    return {
        **json.loads(out["stdout"].strip().splitlines()[-1]),
        "rss_mb": out["rss_mb"],
    }


# ----------------------------------------------------------------- the tables
def _spread(values: Sequence[float], digits: int) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def _total(run: Dict[int, Dict], stages: Sequence[int]) -> Dict:
    """Stages 1-5 of one run as one row: times and disk summed, the largest RSS."""
    return {
        "seconds": sum(run[s]["seconds"] for s in stages),
        "disk_mb": sum(run[s]["disk_mb"] for s in stages),
        "rss_mb": max(run[s]["rss_mb"] for s in stages),
    }


def stage_table(runs: Dict[int, List[Dict]], stages: Sequence[int]) -> str:
    """Markdown: per stage and N, time (median, spread), per utterance, ratio to
    the smallest N, marginal time per utterance, peak RSS and its marginal growth
    per utterance, disk."""
    sizes = sorted(runs)
    lines = [
        f"| stage | N | wall time (s) | per utterance (ms) | vs N={sizes[0]:,} "
        "| marginal per utterance (ms) | peak RSS (MB) "
        "| marginal RSS per utterance (kB) | disk (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for stage in [*stages, "total"]:
        if stage == "total":
            per = {n: [_total(r, stages) for r in runs[n]] for n in sizes}
            name = "**stages 1-5**"
        else:
            per = {n: [r[stage] for r in runs[n]] for n in sizes}
            name = STAGES[stage]
        med = {n: statistics.median(x["seconds"] for x in per[n]) for n in sizes}
        rss = {n: max(x["rss_mb"] for x in per[n]) for n in sizes}
        base = med[sizes[0]] / sizes[0]
        for i, n in enumerate(sizes):
            marginal = marginal_rss = "-"
            if i:
                added = n - sizes[i - 1]
                marginal = f"{1000 * (med[n] - med[sizes[i - 1]]) / added:.3f}"
                marginal_rss = f"{1024 * (rss[n] - rss[sizes[i - 1]]) / added:.2f}"
            lines.append(
                f"| {name} | {n:,} | {_spread([x['seconds'] for x in per[n]], 1)} | "
                f"{1000 * med[n] / n:.3f} | {med[n] / n / base:.2f}x | {marginal} | "
                f"{rss[n]:.0f} | {marginal_rss} | "
                f"{statistics.median(x['disk_mb'] for x in per[n]):.1f} |"
            )
    return "\n".join(lines)


def operation_table(ops: Dict[str, Dict[int, List[Dict]]]) -> str:
    lines = [
        "| operation | N entries | time (s) | per entry (µs) | vs smallest N "
        "| peak RSS (MB) | allocated in the call, peak (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, per in ops.items():
        sizes = sorted(per)
        med = {n: statistics.median(x["seconds"] for x in per[n]) for n in sizes}
        base = med[sizes[0]] / sizes[0]
        for n in sizes:
            lines.append(
                f"| {OPERATIONS[name]} | {n:,} | "
                f"{_spread([x['seconds'] for x in per[n]], 3)} | "
                f"{1e6 * med[n] / n:.1f} | {med[n] / n / base:.2f}x | "
                f"{max(x['rss_mb'] for x in per[n]):.0f} | "
                f"{max(x['traced_mb'] for x in per[n]):.1f} |"
            )
    return "\n".join(lines)


def machine() -> str:
    cpu = "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        torch = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch = "not installed"
    return (
        f"{platform.machine()}, {cpu}, {os.cpu_count()} cores (nproc "
        f"{len(os.sched_getaffinity(0))}); Python {platform.python_version()}, "
        f"torch {torch}"
    )


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 100000])
    parser.add_argument(
        "--stages", type=int, nargs="+", default=list(STAGES), choices=list(STAGES)
    )
    parser.add_argument(
        "--bookkeeping_sizes", type=int, nargs="*", default=[1000, 100000]
    )
    parser.add_argument("--nj", type=int, default=2, help="merit.sh --nj")
    parser.add_argument(
        "--test_snrs",
        default="-5",
        help="merit.sh --test_snrs (noise sets: seen unseen)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="Runs of stages 1-5 at each N up to --repeat_up_to (once above)",
    )
    parser.add_argument("--repeat_up_to", type=int, default=10000)
    parser.add_argument("--op_repeats", type=int, default=3)
    parser.add_argument("--clips", type=int, default=64, help="Distinct audio clips")
    parser.add_argument("--workdir", type=Path, help="Default: a temporary directory")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="Keep each N's recipe and bookkeeping directories (in --workdir)",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench/results/data_scale.md"
    )
    parser.add_argument("--operation", choices=list(OPERATIONS), help=argparse.SUPPRESS)
    parser.add_argument("--operation_dir", type=Path, help=argparse.SUPPRESS)
    return parser


def main():
    args = get_parser().parse_args()
    if args.operation:
        print(json.dumps(operation(args.operation, args.operation_dir)))
        return
    start = time.time()
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="data_scale_")
        args.workdir = Path(tmp.name)
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    clips = make_clips(work / "clips", args.clips)
    noise = make_noise(work / "noise")

    runs: Dict[int, List[Dict]] = {}
    sizes = sorted(args.sizes)
    for rep in range(max(args.repeats, 1)):  # interleaved: noise hits all sizes
        for n in sizes:
            if rep and n > args.repeat_up_to:
                continue
            runs.setdefault(n, []).append(pipeline(work, n, clips, noise, args))

    ops: Dict[str, Dict[int, List[Dict]]] = {name: {} for name in OPERATIONS}
    for n in sorted(args.bookkeeping_sizes):
        d = work / f"bookkeeping_{n}"
        shutil.rmtree(d, ignore_errors=True)
        make_bookkeeping(d, n)
        for _ in range(args.op_repeats):
            for name in OPERATIONS:
                ops[name].setdefault(n, []).append(run_operation(name, d))
                print(f"{name} N={n}: {ops[name][n][-1]}", flush=True)
        if not args.keep:
            shutil.rmtree(d)

    repeats = ", ".join(f"N={n:,}: {len(runs[n])}" for n in sizes)
    lines = [
        f"- date: {datetime.datetime.now():%Y-%m-%d %H:%M}",
        f"- machine: {machine()}",
        f"- corpus: MSP-Podcast layout, N labelled utterances (70/15/15 % "
        f"Train/Development/Test1) + 5 % O/X rows, audio hard links to {args.clips} "
        f"clips of {CLIP_SEC[0]:g}-{CLIP_SEC[1]:g} s; `merit.sh --nj {args.nj}` with "
        f'the mini recipe\'s options, `--test_snrs "{args.test_snrs}"` (seen and '
        f"unseen noise: {len(args.test_snrs.split()) * 2} noisy copies of Test1); "
        f"runs per N ({repeats}), interleaved: wall time median (min-max)",
        "- peak RSS: the largest process of the stage (ru_maxrss of its process "
        "tree); disk: growth of the recipe directory (du); marginal per utterance: "
        "the difference to the previous N over the utterances added (fixed costs, "
        "such as imports, cancel out)",
        "",
    ]
    if runs:
        lines += [stage_table(runs, args.stages), ""]
    if args.bookkeeping_sizes:
        lines += [
            f"Bookkeeping on N entries (each operation in a fresh process that "
            f"imports what its command imports; the call alone is timed: the "
            f"median of at least {MIN_CALLS} calls and {MIN_TIMED_SEC:g} s after a "
            "warm-up call; then one call under tracemalloc for what it allocates; "
            f"{args.op_repeats} runs, median (min-max)):",
            "",
            operation_table(ops),
            "",
        ]
    lines.append(f"Wall time of the benchmark: {time.time() - start:.0f} s")
    publish("\n".join(lines), args.out)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
