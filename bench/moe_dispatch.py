#!/usr/bin/env python3
"""Sparse MERIT dispatch cost: ours vs. the authors' dense mask vs. the ideal.

Three forward + backward implementations with the same weights and the same routing:

- ours: ``SparseMoEFusion.forward`` (each distinct chosen (frame, expert) pair once);
- dense-mask: every expert on every valid frame, then per task a one-hot mask of the
  chosen expert times its gate (the authors' scheme, re-implemented here);
- ideal: only the distinct chosen pairs, on tokens gathered before the timer.

A second table (``--variants``, at one pool size ``--variant_experts``) times the
expert mechanisms against their ideal: shared experts (every frame, beside the
routed one), top-p routing (a variable number of experts per frame) and per-task
top-k, with the mean number of routed experts per frame of each task; it is
written to ``--variants_out``.

Paper dimensions by default: 25 x 1024 input (25600 per frame), experts 4096 hidden /
1024 out, top-1, tasks "se" and "ser", 4 utterances x 5 s at 50 frames/s. Times are
medians of interleaved repeats after a warm-up; FLOPs are counted by torch's
FlopCounterMode on the warm-up (forward + backward).

    .venv/bin/python bench/moe_dispatch.py             # full size, ~20 min on 2 cores
    .venv/bin/python bench/moe_dispatch.py --frames 20 --batch 2 --hidden 256 \
        --layers 4 --dim 64 --experts 3,8 --repeats 1  # smoke run
    .venv/bin/python bench/moe_dispatch.py --experts ""  # the variants only
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

from espnet2_merit.merit.fusion.sparse_moe import SparseMoEFusion, experts_per_frame
from espnet2_merit.utils.masks import valid_mask

TASKS = ("se", "ser")
# Issue targets on CPU: ours / ideal for every E, ours / dense-mask per E.
MAX_OURS_IDEAL = 1.15
MAX_OURS_DENSE = {3: 0.65, 8: 0.3}
# Expert mechanisms (SparseMoEFusion options) timed at one pool size.
VARIANTS = {
    "top1": dict(top_k=1),
    "shared": dict(top_k=1, num_shared=1),
    "top_p": dict(top_p=0.5, max_k=3),
    "per_task_k": dict(top_k={"se": 1, "ser": 2}),
}


def ours(fusion: SparseMoEFusion, feats, lengths) -> Dict[str, torch.Tensor]:
    """Our grouped dispatch: the module's own forward."""
    return fusion(feats, lengths).features


def dense_mask(fusion: SparseMoEFusion, feats, lengths) -> Dict[str, torch.Tensor]:
    """The authors' scheme: every expert on every frame, then a gated one-hot mask
    (summed over a frame's choices; unused slots have gate 0), + shared experts."""
    bsz, frames = feats.shape[:2]
    mask = valid_mask(lengths, frames)
    tokens = fusion.tokens(feats, lengths)
    every = torch.stack([expert(tokens) for expert in fusion.experts])  # (E, N, O)
    shared = sum(expert(tokens) for expert in fusion.shared_experts)
    out = {}
    for task, r in fusion.route(tokens).items():
        hot = torch.nn.functional.one_hot(r.experts.clamp(min=0), fusion.num_experts)
        weights = (hot.to(r.gates.dtype) * r.gates[..., None]).sum(1)  # (N, E)
        mixed = (weights.t()[..., None].to(every.dtype) * every).sum(0) + shared
        feat = mixed.new_zeros(bsz, frames, mixed.size(-1))
        feat[mask] = mixed
        out[task] = feat
    return out


def ideal_inputs(fusion: SparseMoEFusion, feats, lengths) -> List[torch.Tensor]:
    """Each expert's distinct chosen frames, gathered once, outside the timer.

    They require a gradient: in ``ours`` the tokens depend on the LayerNorm
    parameters, so the input gradient of each expert must be computed there too.
    The last entry holds every valid frame, the input of the shared experts.
    """
    with torch.no_grad():
        tokens = fusion.tokens(feats, lengths)
        chosen = torch.zeros(fusion.num_experts, len(tokens), dtype=torch.bool)
        frames = torch.arange(len(tokens))[:, None]
        for r in fusion.route(tokens).values():
            used = r.experts >= 0
            chosen[r.experts[used], frames.expand_as(used)[used]] = True
        index = [chosen[e].nonzero()[:, 0] for e in range(fusion.num_experts)]
        return [tokens[idx].requires_grad_() for idx in index] + [
            tokens.clone().requires_grad_()
        ]


def ideal(fusion: SparseMoEFusion, inputs) -> Dict[int, torch.Tensor]:
    """Only the expert computations on their pre-gathered tokens (the shared
    experts once on every valid frame)."""
    out = {e: fusion.experts[e](x) for e, x in enumerate(inputs[:-1]) if len(x)}
    for i, expert in enumerate(fusion.shared_experts):
        out[f"shared{i}"] = expert(inputs[-1])
    return out


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
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated expert mechanisms of {list(VARIANTS)} ('' for none)",
    )
    parser.add_argument(
        "--variant_experts", type=int, default=8, help="E of the variants' pool"
    )
    parser.add_argument(
        "--variants_out",
        type=Path,
        default=Path("bench/results/moe_dispatch_variants.md"),
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
    pairs = sum(len(x) for x in inputs[:-1])
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


def bench_variant(args, name: str, feats, lengths) -> Dict[str, float]:
    """Time and count ours vs the ideal for one expert mechanism."""
    torch.manual_seed(args.variant_experts)
    fusion = SparseMoEFusion(
        args.layers,
        args.dim,
        TASKS,
        num_experts=args.variant_experts,
        hidden_size=args.hidden,
        output_size=args.output,
        **VARIANTS[name],
    )
    check_same(fusion, feats, lengths)
    with torch.no_grad():
        routes = fusion(feats, lengths).routes
    valid = valid_mask(lengths, feats.size(1))
    per_frame = {
        t: float(experts_per_frame(e)[valid].float().mean())
        for t, (e, _) in routes.items()
    }
    inputs = ideal_inputs(fusion, feats, lengths)
    params = list(fusion.parameters())
    impls = {
        "ours": (lambda: ours(fusion, feats, lengths), params),
        "ideal": (lambda: ideal(fusion, inputs), params + inputs),
    }
    flops = {k: counted(*impl) for k, impl in impls.items()}
    times = {k: [] for k in impls}
    for _ in range(args.repeats):
        for k, impl in impls.items():
            times[k].append(timed(*impl))
    result = {
        "variant": name,
        "N": int(lengths.sum()),
        "pairs": sum(len(x) for x in inputs[:-1]),
        "shared": fusion.num_shared,
        **{f"k_{t}": v for t, v in per_frame.items()},
        **{f"t_{k}": statistics.median(v) for k, v in times.items()},
        **{f"f_{k}": float(v) for k, v in flops.items()},
    }
    for p in params + inputs:
        p.grad = None
    del fusion, params, inputs, impls
    gc.collect()
    return result


def variant_row(r: Dict) -> str:
    conf = ", ".join(f"{k}={v}" for k, v in VARIANTS[r["variant"]].items())
    cells = [
        f"{r['variant']} ({conf})".replace("'", ""),
        *(f"{r[f'k_{t}']:.3f}" for t in TASKS),
        f"{r['pairs'] / r['N']:.3f}",
        f"{r['shared']}",
        f"{r['t_ours']:.3f}",
        f"{r['t_ideal']:.3f}",
        f"{r['t_ours'] / r['t_ideal']:.3f}",
        f"{r['f_ours'] / 1e9:.1f}",
        f"{r['f_ideal'] / 1e9:.1f}",
        f"{r['f_ours'] / r['f_ideal']:.3f}",
    ]
    return "| " + " | ".join(cells) + " |"


VARIANT_HEAD = [
    "| variant | "
    + " | ".join(f"{t} experts/frame" for t in TASKS)
    + " | distinct pairs/frame | shared | ours (s) | ideal (s) | ours/ideal "
    "| ours FLOPs (G) | ideal FLOPs (G) | FLOP ratio |",
    "|---" * (9 + len(TASKS)) + "|",
]


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


def run_pool(args, feats, lengths, info) -> None:
    """The E sweep: ours vs dense-mask vs ideal, top-1."""
    start = time.perf_counter()
    print("\n".join(info + ["- top-1", ""] + HEAD), flush=True)
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
    write(args.out, info + ["- top-1", ""] + HEAD + rows + [""] + notes)


def run_variants(args, feats, lengths, info) -> None:
    """The expert mechanisms at E = ``--variant_experts``: ours vs ideal."""
    start = time.perf_counter()
    head = info + [f"- E={args.variant_experts} routed experts", ""] + VARIANT_HEAD
    print("\n".join(head), flush=True)
    rows = []
    for name in args.variants.split(","):
        rows.append(variant_row(bench_variant(args, name, feats, lengths)))
        print(rows[-1], flush=True)
    wall = time.perf_counter() - start
    notes = [
        "experts/frame: mean number of routed experts per valid frame and task "
        "(shared experts not counted), from the routes forward returns; with "
        "untrained routers, so it shows the mechanism, not a trained model's "
        "choices. Distinct pairs/frame: the (frame, expert) pairs both tasks "
        "together need, each computed once. Ideal: those pairs (and the shared "
        "experts on every valid frame) on tokens gathered outside the timer. "
        "FLOPs: FlopCounterMode, forward + backward.",
        "",
        f"Wall time: {wall:.0f} s",
    ]
    write(args.variants_out, head + rows + [""] + notes)


def write(path: Path, lines: List[str]) -> None:
    print("\n" + "\n".join(lines[-3:]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    unknown = [v for v in args.variants.split(",") if v and v not in VARIANTS]
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; known {list(VARIANTS)}")
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
        f"tasks {'+'.join(TASKS)}, {args.batch} x {args.frames} frames",
        f"- forward + backward, median of {args.repeats} after a warm-up",
    ]
    if args.experts:
        run_pool(args, feats, lengths, info)
    if args.variants:
        run_variants(args, feats, lengths, info)


if __name__ == "__main__":
    main()
