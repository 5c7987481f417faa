#!/usr/bin/env python3
"""What a training run's result depends on, and what pinning it costs.

The same training command (the tiny sparse MERIT config on generated data, a
fresh process each time) under every combination of the thread count
(``OMP_NUM_THREADS``) and ``--deterministic`` (``torch.use_deterministic_algorithms``),
repeated and interleaved. For each setting: the training time (config.yaml written
-> last checkpoint written, so imports are not counted), whether its repeats gave
byte-identical weights, and the largest weight difference from the first setting.

    .venv/bin/python bench/determinism.py --out bench/results/determinism.md  # ~8 min
"""

import argparse
import datetime
import itertools
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from merit_testing import SPARSE_TINY, data_args  # noqa: E402
from tables import publish  # noqa: E402

from espnet2_merit.utils.ssl_checkpoint import make_wavlm_checkpoint  # noqa: E402
from espnet2_merit.utils.synthetic import make_data_dir  # noqa: E402


def train(out: Path, threads: int, deterministic: bool, ssl: Path, data, epochs: int):
    """One training run in a fresh process: (seconds of training, final weights)."""
    cmd = [
        sys.executable, "-m", "espnet2_merit.bin.merit_train",
        "--config", str(SPARSE_TINY), "--frontend_conf", f"path_or_url={ssl}",
        "--emotion_list", str(data[0] / "emotion_list"), "--output_dir", str(out),
        "--ngpu", "0", "--max_epoch", str(epochs),
        "--deterministic", str(deterministic).lower(), *data_args(*data),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"training failed: {done.stderr[-3000:]}")
    last = out / f"{epochs}epoch.pth"
    seconds = last.stat().st_mtime - (out / "config.yaml").stat().st_mtime
    return seconds, torch.load(last, weights_only=True)


def max_diff(a, b) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--out", default=str(REPO / "bench/results/determinism.md"))
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    settings = list(itertools.product(threads, (False, True)))
    runs = {s: [] for s in settings}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ssl = make_wavlm_checkpoint(tmp / "tiny.pt", "tiny")
        data = (
            make_data_dir(tmp / "train", num_utts=40, seed=1),
            make_data_dir(tmp / "valid", num_utts=8, seed=2),
        )
        for r in range(args.repeats):
            for n, det in settings:
                out = tmp / f"exp_{n}_{det}_{r}"
                runs[(n, det)].append(train(out, n, det, ssl, data, args.epochs))
    ref = runs[settings[0]][0][1]
    lines = [
        f"- date: {datetime.datetime.now():%Y-%m-%d %H:%M}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}; tiny sparse MERIT, 40 generated utterances, "
        f"{args.epochs} epochs, {args.repeats} interleaved repeats per setting",
        "",
        "| threads | deterministic | training (s), median | min - max (s) "
        "| repeats identical | max weight diff vs first row |",
        "|---|---|---|---|---|---|",
    ]
    for (n, det), rs in runs.items():
        times = [t for t, _ in rs]
        same = all(max_diff(rs[0][1], w) == 0.0 for _, w in rs[1:])
        lines.append(
            f"| {n} | {det} | {statistics.median(times):.1f} | "
            f"{min(times):.1f} - {max(times):.1f} | {'yes' if same else 'no'} | "
            f"{max_diff(ref, rs[0][1]):.2e} |"
        )
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
