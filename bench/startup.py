#!/usr/bin/env python3
"""Start-up time of the commands a user types first: ``merit --help``, ``merit
predict`` on one 4 s file (a tiny model and a WavLM Base+-shaped one, random
weights, packed like a trained model), the import of the inference path alone,
and ``merit_train --print_config``; each a fresh process, repeated and
interleaved, so machine noise hits all alike.

    .venv/bin/python bench/startup.py --out bench/results/startup.md   # ~6 min
"""

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch
from tables import publish  # bench/

REPO = Path(__file__).resolve().parents[1]


def packed_model(shape: str, tmp: Path) -> Path:
    """A packed model of ``shape`` with random weights, built as training does."""
    from inference_rtf import make_config  # bench/ is on the path of its scripts

    from espnet2_merit.tasks.builder import build_model_from_file
    from espnet2_merit.utils.packing import pack_model

    config = make_config(shape, tmp)
    model, _ = build_model_from_file(config, allow_random_init=True)
    torch.save(model.state_dict(), tmp / f"{shape}.pth")
    return pack_model(config, tmp / f"{shape}.pth", tmp / f"{shape}.zip")


def timed(cmd, env) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr[-2000:]}")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "bench/results/startup.md"))
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wav = tmp / "a.wav"
        soundfile.write(
            wav, 0.1 * np.random.default_rng(0).standard_normal(64000), 16000
        )
        models = {s: packed_model(s, tmp) for s in ("tiny", "base_plus")}
        env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "cache"))
        cli = [py, "-m", "espnet2_merit.bin.merit_cli"]
        commands = {
            "merit --help": [*cli, "--help"],
            "import of the inference path": [
                py, "-c", "import espnet2_merit.inference.commands, "
                "espnet2_merit.tasks.builder, espnet2_merit.merit.frontend.s3prl as f; "
                "f.s3prl_upstream_class()",
            ],
            **{
                f"merit predict, one 4 s file, {s} model": [
                    *cli, "predict", str(wav), "--model", str(m), "--json"
                ]
                for s, m in models.items()
            },
            "merit_train --print_config": [
                py, "-m", "espnet2_merit.bin.merit_train", "--print_config",
                "--config", str(REPO / "conf/sparse_merit.yaml"),
            ],
        }  # fmt: skip
        for cmd in commands.values():  # warm the file cache and the unpack cache
            timed(cmd, env)
        times = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, cmd in commands.items():
                times[name].append(timed(cmd, env))
    lines = [
        f"- date: {datetime.datetime.now():%Y-%m-%d %H:%M}",
        f"- machine: {platform.machine()}, {platform.processor() or 'CPU'}, "
        f"torch {torch.__version__}; each command a fresh process, "
        f"{args.repeats} interleaved repeats after a warm-up run",
        "",
        "| command | median (s) | min - max (s) |",
        "|---|---|---|",
    ]
    for name, ts in times.items():
        lines.append(
            f"| {name} | {statistics.median(ts):.2f} | {min(ts):.2f} - {max(ts):.2f} |"
        )
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
