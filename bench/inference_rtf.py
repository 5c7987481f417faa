#!/usr/bin/env python3
"""Inference real-time factor of Speech2EmotionEnhance on this machine.

Sparse MERIT (top-1, 3 experts) on a tiny WavLM and on a WavLM Base+-shaped one
(random weights, built locally), SER only and SER + enhanced waveform. RTF =
processing time / audio duration (lower is faster), median of ``--repeats``.

    .venv/bin/python bench/inference_rtf.py                  # ~2 min on 2 cores
    .venv/bin/python bench/inference_rtf.py --shapes tiny --seconds 2 --repeats 1
"""

import argparse
import datetime
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from tables import publish  # bench/

from espnet2_merit.inference.speech2emotion import Speech2EmotionEnhance
from espnet2_merit.tasks.merit import MeritTask
from espnet2_merit.utils.ssl_checkpoint import make_wavlm_checkpoint

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    "tiny": REPO / "conf/tuning/train_sparse_merit_tiny.yaml",
    "base_plus": REPO / "conf/sparse_merit.yaml",
}


def make_config(shape: str, tmp: Path) -> Path:
    """A training config.yaml for ``shape`` as ESPnet would write it."""
    ckpt = make_wavlm_checkpoint(tmp / f"{shape}.pt", shape)
    args = MeritTask.get_parser().parse_args(
        [
            "--config", str(CONFIGS[shape]),
            "--frontend_conf", "upstream=wavlm_local",
            "--frontend_conf", f"path_or_url={ckpt}",
            "--normalize", "utterance_mvn",
        ]
    )  # fmt: skip
    args.emotion_list = ["A", "S", "H", "N"]
    for task in args.tasks.values():  # no training data here: unweighted classes
        task.get("loss_conf", {}).pop("class_weights", None)
    MeritTask.build_model(args)  # records every option, as training does
    path = tmp / f"{shape}.yaml"
    path.write_text(yaml.safe_dump(vars(args)))
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="tiny,base_plus")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "bench/results/inference_rtf.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    wav = np.random.default_rng(0).standard_normal(int(args.seconds * 16000))
    wav = (0.1 * wav).astype(np.float32)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shapes.split(","):
            config = make_config(shape, Path(tmp))
            for enhance in (False, True):
                s2e = Speech2EmotionEnhance(
                    config, None, enhance=enhance, allow_random_init=True
                )
                s2e(wav[:16000])  # warm-up
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    s2e(wav)
                    times.append(time.perf_counter() - start)
                t = statistics.median(times)
                params = sum(p.numel() for p in s2e.model.parameters()) / 1e6
                rows.append((shape, "SER + SE" if enhance else "SER", params, t))

    lines = [
        f"- date: {datetime.datetime.now():%Y-%m-%d %H:%M}",
        f"- CPU: {platform.processor() or platform.machine()}, torch "
        f"{torch.__version__}, {args.threads} threads, fp32, batch 1",
        f"- one {args.seconds:g} s recording, median of {args.repeats}",
        "",
        "| model | outputs | params (M) | time (s) | RTF |",
        "|---|---|---|---|---|",
    ]
    for shape, what, params, t in rows:
        lines.append(
            f"| sparse MERIT, WavLM {shape} | {what} | {params:.1f} | {t:.3f} "
            f"| {t / args.seconds:.4f} |"
        )
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
