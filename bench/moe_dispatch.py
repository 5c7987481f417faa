#!/usr/bin/env python3
"""Sparse MERIT dispatch cost: ours vs. the authors' dense mask vs. the ideal.

Three forward + backward implementations with the same weights and the same routing:

- ours: ``SparseMoEFusion.forward`` (each distinct chosen (frame, expert) pair once);
- dense-mask: every expert on every valid frame, then per task a one-hot mask of the
  chosen expert times its gate (the authors' scheme, re-implemented here);
- ideal: only the distinct chosen pairs, on tokens gathered before the timer.

Paper dimensions by default: 25 x 1024 input (25600 per frame), experts 4096 hidden /
1024 out, top-1, tasks "se" and "ser", 4 utterances x 5 s at 50 frames/s. Times are
medians of interleaved repeats after a warm-up; FLOPs are counted by torch's
FlopCounterMode on the warm-up (forward + backward).

    .venv/bin/python bench/moe_dispatch.py             # full size, ~20 min on 2 cores
    .venv/bin/python bench/moe_dispatch.py --frames 20 --batch 2 --hidden 256 \
        --layers 4 --dim 64 --experts 3,8 --repeats 1  # smoke run
"""

import argparse
import datetime
import gc
import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch
from torch.utils.flop_counter import FlopCounterMode

from espnet2_merit.merit.fusion.sparse_moe import SparseMoEFusion
from espnet2_merit.utils.masks import valid_mask

TASKS = ("se", "ser")
# Issue targets on CPU: ours / ideal for every E, ours / dense-mask per E.
MAX_OURS_IDEAL = 1.15
MAX_OURS_DENSE = {3: 0.65, 8: 0.3}


def ours(fusion: SparseMoEFusion, feats, lengths) -> Dict[str, torch.Tensor]:
    """Our grouped dispatch: the module's own forward."""
    return fusion(feats, lengths).features


def dense_mask(fusion: SparseMoEFusion, feats, lengths) -> Dict[str, torch.Tensor]:
    """The authors' scheme: every expert on every frame, then a gated one-hot mask."""
    bsz, frames = feats.shape[:2]
    mask = valid_mask(lengths, frames)
    tokens = fusion.tokens(feats, lengths)
    every = torch.stack([expert(tokens) for expert in fusion.experts])  # (E, N, O)
    out = {}
    for task, r in fusion.route(tokens).items():
        hot = torch.nn.functional.one_hot(r.experts[:, 0], fusion.num_experts)
        weights = hot.to(r.gates.dtype) * r.gates  # (N, E)
        mixed = (weights.t()[..., None].to(every.dtype) * every).sum(0)
        feat = mixed.new_zeros(bsz, frames, mixed.size(-1))
        feat[mask] = mixed
        out[task] = feat
    return out


def ideal_inputs(fusion: SparseMoEFusion, feats, lengths) -> List[torch.Tensor]:
    """Each expert's distinct chosen frames, gathered once, outside the timer.

    They require a gradient: in ``ours`` the tokens depend on the LayerNorm
    parameters, so the input gradient of each expert must be computed there too.
    """
    with torch.no_grad():
        tokens = fusion.tokens(feats, lengths)
        chosen = torch.zeros(fusion.num_experts, len(tokens), dtype=torch.bool)
        for r in fusion.route(tokens).values():
            chosen.scatter_(0, r.experts.t(), True)
        index = [chosen[e].nonzero()[:, 0] for e in range(fusion.num_experts)]
        return [tokens[idx].requires_grad_() for idx in index]


def ideal(fusion: SparseMoEFusion, inputs) -> Dict[int, torch.Tensor]:
    """Only the expert computations on their pre-gathered tokens."""
    return {e: fusion.experts[e](x) for e, x in enumerate(inputs) if len(x)}


def step(fn: Callable, tensors: List[torch.Tensor]) -> None:
    """One forward + backward; the loss is the sum of all outputs."""
    for t in tensors:
        t.grad = None
    sum(o.sum() for o in fn().values()).backward()


def counted(fn: Callable, tensors: List[torch.Tensor]) -> int:
    """Warm-up step with its forward + backward FLOPs counted."""
    counter = FlopCounterMode(display=False)
    with counter:
        step(fn, tensors)
    return counter.get_total_flops()


def timed(fn: Callable, tensors: List[torch.Tensor]) -> float:
    """Seconds of one forward + backward step."""
    start = time.perf_counter()
    step(fn, tensors)
    return time.perf_counter() - start


def check_same(fusion: SparseMoEFusion, feats, lengths) -> None:
    """Ours and dense-mask must give the same features (same routing, weights)."""
    with torch.no_grad():
        a, b = ours(fusion, feats, lengths), dense_mask(fusion, feats, lengths)
    for task in TASKS:
        if not torch.allclose(a[task], b[task], rtol=1e-4, atol=1e-5):
            err = (a[task] - b[task]).abs().max().item()
            raise RuntimeError(f"ours != dense-mask for {task}: max err {err:.2e}")


def cpu_name() -> str:
    """CPU model from /proc/cpuinfo."""
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
    parser.add_argument("--batch", type=int, default=4, help="utterances")
    parser.add_argument("--experts", default="3,5,8", help="comma-separated E")
    parser.add_argument("--repeats", type=int, default=3, help="timed; median")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--layers", type=int, default=25, help="L")
    parser.add_argument("--dim", type=int, default=1024, help="D")
    parser.add_argument("--hidden", type=int, default=4096, help="expert hidden")
    parser.add_argument("--output", type=int, default=1024, help="expert output")
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/moe_dispatch.md")
    )
    return parser


def bench_one(args, num_experts: int, feats, lengths) -> Dict[str, float]:
    """Time and count the three implementations for one pool size E."""
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
    check_same(fusion, feats, lengths)
    inputs = ideal_inputs(fusion, feats, lengths)
    params = list(fusion.parameters())
    impls = {
        "ours": (lambda: ours(fusion, feats, lengths), params),
        "dense": (lambda: dense_mask(fusion, feats, lengths), params),
        "ideal": (lambda: ideal(fusion, inputs), params + inputs),
    }
    flops = {name: counted(*impl) for name, impl in impls.items()}
    times = {name: [] for name in impls}
    for _ in range(args.repeats):  # interleaved, so drift hits all three alike
        for name, impl in impls.items():
            times[name].append(timed(*impl))
    pairs = sum(len(x) for x in inputs)
    result = {
        "E": num_experts,
        "N": int(lengths.sum()),
        "pairs": pairs,
        **{f"t_{k}": statistics.median(v) for k, v in times.items()},
        **{f"f_{k}": float(v) for k, v in flops.items()},
    }
    for p in params + inputs:
        p.grad = None
    del fusion, params, inputs, impls
    gc.collect()
    return result


def row(r: Dict[str, float]) -> str:
    e, n = r["E"], r["N"]
    cells = [
        f"{e}",
        f"{n}",
        f"{r['t_ours']:.3f}",
        f"{r['t_dense']:.3f}",
        f"{r['t_ideal']:.3f}",
        f"{r['t_ours'] / r['t_dense']:.3f}",
        f"{r['t_ours'] / r['t_ideal']:.3f}",
        f"{r['f_dense'] / 1e9:.1f}",
        f"{r['f_ours'] / 1e9:.1f}",
        f"{r['f_ours'] / r['f_dense']:.3f}",
        f"{r['pairs'] / (e * n):.3f}",
        f"{1 - (1 - 1 / e) ** 2:.3f}",
    ]
    return "| " + " | ".join(cells) + " |"


def verdicts(r: Dict[str, float]) -> List[str]:
    e, lines = r["E"], []
    checks = [("ideal", MAX_OURS_IDEAL)]
    if e in MAX_OURS_DENSE:
        checks.insert(0, ("dense", MAX_OURS_DENSE[e]))
    for ref, limit in checks:
        ratio = r["t_ours"] / r[f"t_{ref}"]
        name = "dense-mask" if ref == "dense" else ref
        ok = "PASS" if ratio <= limit else "FAIL"
        lines.append(f"- E={e}: ours/{name} {ratio:.3f} ≤ {limit}: **{ok}**")
    return lines


HEAD = [
    "| E | frames | ours (s) | dense-mask (s) | ideal (s) | ours/dense | ours/ideal "
    "| dense FLOPs (G) | ours FLOPs (G) | FLOP ratio | expected ratio "
    "| uniform 1-(1-1/E)² |",
    "|---" * 12 + "|",
]


def main(cmd=None) -> None:
    start = time.perf_counter()
    args = get_parser().parse_args(cmd)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    feats = torch.randn(args.batch, args.frames, args.layers, args.dim)
    lengths = torch.full((args.batch,), args.frames)
    info = [
        f"- date: {datetime.datetime.now():%Y-%m-%d %H:%M}",
        f"- CPU: {cpu_name()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, fp32",
        f"- input {args.layers}x{args.dim} (expert input "
        f"{args.layers * args.dim}), hidden {args.hidden}, output {args.output}, "
        f"top-1, tasks {'+'.join(TASKS)}, {args.batch} x {args.frames} frames",
        f"- forward + backward, median of {args.repeats} after a warm-up",
    ]
    print("\n".join(info + [""] + HEAD), flush=True)
    rows, checks = [], []
    for num_experts in [int(e) for e in args.experts.split(",")]:
        r = bench_one(args, num_experts, feats, lengths)
        rows.append(row(r))
        checks += verdicts(r)
        print(rows[-1], flush=True)
    wall = time.perf_counter() - start
    notes = [
        "FLOPs: counted by torch.utils.flop_counter.FlopCounterMode (matmuls), "
        "forward + backward. Expected ratio: measured distinct (frame, expert) "
        "pairs of the two top-1 routers / (E x frames); the last column is its "
        "value for independent uniform routing.",
        "",
        "Targets (CPU):",
        *checks,
        "",
        f"Wall time: {wall:.0f} s",
    ]
    table = "\n".join(info + [""] + HEAD + rows + [""] + notes) + "\n"
    print("\n" + "\n".join(notes))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
