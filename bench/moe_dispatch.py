#!/usr/bin/env python3
"""Sparse MERIT dispatch cost: our grouped dispatch vs. the authors' dense-mask scheme
vs. the ideal (only the distinct chosen (frame, expert) pairs), in one run.

Paper dimensions by default: 25 x 1024 input (25600 per frame), experts 4096 hidden /
1024 out, top-1, two tasks, 4 utterances x 5 s at 50 frames/s. Times are forward +
backward medians; FLOPs are counted by torch's FlopCounterMode on the warm-up run.

    .venv/bin/python bench/moe_dispatch.py             # full size, ~15 min on 2 cores
    .venv/bin/python bench/moe_dispatch.py --frames 20 --hidden 256 --layers 4 \
        --dim 64 --experts 3,8 --repeats 1             # smoke run
"""

import argparse
import datetime
import gc
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from espnet2_merit.merit.fusion.sparse_moe import SparseMoEFusion

TASKS = ("se", "ser")


def dense_mask(fusion: SparseMoEFusion, feats, lengths):
    """The authors' scheme: every expert on every frame, then a one-hot mask."""
    x = fusion.norm(feats).flatten(2)
    mask = torch.arange(x.size(1))[None] < lengths[:, None]
    tokens = x[mask]
    every = torch.stack([expert(tokens) for expert in fusion.experts], 1)  # (N, E, O)
    out = {}
    for task in TASKS:
        r = fusion.route(tokens, task)
        weights = torch.zeros_like(r.probs).scatter(1, r.experts, r.gates)
        out[task] = (weights[..., None].to(every.dtype) * every).sum(1)
    return out


def ideal_inputs(fusion: SparseMoEFusion, feats, lengths):
    """Pre-gathered tokens of each expert's distinct chosen frames."""
    with torch.no_grad():
        x = fusion.norm(feats).flatten(2)
        tokens = x[torch.arange(x.size(1))[None] < lengths[:, None]]
        chosen = torch.zeros(len(fusion.experts), len(tokens), dtype=torch.bool)
        for task in TASKS:
            chosen.scatter_(0, fusion.route(tokens, task).experts.t(), True)
    return [tokens[chosen[e]].clone() for e in range(len(fusion.experts))]


def ideal(fusion: SparseMoEFusion, inputs):
    return {e: fusion.experts[e](x) for e, x in enumerate(inputs) if len(x)}


def run(fn, params, repeats):
    """Median forward+backward seconds and the FLOPs of one call."""

    def once():
        for p in params:
            p.grad = None
        out = fn()
        sum(o.sum() for o in out.values()).backward()

    counter = FlopCounterMode(display=False)
    with counter:
        once()  # warm-up, counted
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return statistics.median(times), counter.get_total_flops()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=250, help="per utterance")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--experts", default="3,5,8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--layers", type=int, default=25)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--output", type=int, default=1024)
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/moe_dispatch.md")
    )
    return parser


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    feats = torch.randn(args.batch, args.frames, args.layers, args.dim)
    lengths = torch.full((args.batch,), args.frames)
    header = (
        f"{datetime.date.today()} · {cpu_name()} · torch {torch.__version__} · "
        f"{torch.get_num_threads()} threads · input {args.layers}x{args.dim}, "
        f"hidden {args.hidden}, out {args.output}, top-1, 2 tasks, "
        f"{args.batch}x{args.frames} frames, median of {args.repeats}"
    )
    rows = [
        "| E | distinct pairs / (E·N) | ours (s) | dense-mask (s) | ideal (s) | "
        "ours / dense | ours / ideal | dense GFLOP | ours GFLOP | ideal GFLOP | "
        "FLOP ours / dense |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for num_experts in [int(e) for e in args.experts.split(",")]:
        torch.manual_seed(num_experts)
        fusion = SparseMoEFusion(
            args.layers,
            args.dim,
            TASKS,
            num_experts=num_experts,
            hidden_size=args.hidden,
            output_size=args.output,
            top_k=1,
        )
        params = list(fusion.parameters())
        inputs = ideal_inputs(fusion, feats, lengths)
        pairs = sum(len(x) for x in inputs)
        share = pairs / (num_experts * args.batch * args.frames)
        t_ours, f_ours = run(
            lambda: fusion(feats, lengths).features, params, args.repeats
        )
        t_dense, f_dense = run(
            lambda: dense_mask(fusion, feats, lengths), params, args.repeats
        )
        t_ideal, f_ideal = run(lambda: ideal(fusion, inputs), params, args.repeats)
        rows.append(
            f"| {num_experts} | {share:.3f} | {t_ours:.2f} | {t_dense:.2f} | "
            f"{t_ideal:.2f} | {t_ours / t_dense:.3f} | {t_ours / t_ideal:.3f} | "
            f"{f_dense / 1e9:.0f} | {f_ours / 1e9:.0f} | {f_ideal / 1e9:.0f} | "
            f"{f_ours / f_dense:.3f} |"
        )
        target = {3: 0.65, 8: 0.3}.get(num_experts)
        if target is not None:
            ok = t_ours / t_dense <= target
            verdicts.append(
                f"- E={num_experts}: ours/dense {t_ours / t_dense:.3f} ≤ {target}: "
                f"{'PASS' if ok else 'FAIL'}"
            )
        ok = t_ours / t_ideal <= 1.15
        verdicts.append(
            f"- E={num_experts}: ours/ideal {t_ours / t_ideal:.3f} ≤ 1.15: "
            f"{'PASS' if ok else 'FAIL'}"
        )
        print(rows[-1], flush=True)
        del fusion, params, inputs
        gc.collect()
    table = "\n".join([header, "", *rows, "", "Targets (CPU):", *verdicts]) + "\n"
    print("\n" + table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)


if __name__ == "__main__":
    main()
