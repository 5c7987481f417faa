#!/usr/bin/env python3
"""What Sparse MERIT costs on top of its SSL backbone, system by system.

For WavLM shapes (random weights, built locally) and 4 utterances x 5 s:

- inference: time of the backbone alone and of the whole model (fusion, SER head,
  SE head with its waveform), interleaved in one process; the headline is the ratio
  (fusion + heads) / backbone = (whole - backbone) / backbone, in time and in FLOPs;
- one training step (forward + backward + AdamW step): time and peak memory (the
  process's peak RSS on CPU, ``torch.cuda.max_memory_allocated`` on GPU);
- parameters (backbone / rest) and FLOPs per second of audio, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (matmuls, convolutions, attention,
  and the SE head's LSTM through the formulas below);
- on GPU (``--device cuda``), also training throughput (utterances/s) and peak GPU
  memory at ``--throughput_batch`` (32) utterances for every system.

Systems are the paper configs of ``conf/`` with the backbone swapped by YAML edit,
plus ``sparse_ws``: sparse MERIT whose experts read a softmax-weighted sum of the
layers (``fusion_conf.combine: weighted_sum``: 1024 -> 4096 -> 1024 experts instead
of 25600 -> 4096 -> 1024). On CPU every system runs in its own process, so that
peak RSS is its own.

    .venv/bin/python bench/cost.py                      # 27 min on 2 cores
    .venv/bin/python bench/cost.py --device cuda --bf16 --out bench/results/cost_gpu.md
    .venv/bin/python bench/cost.py --shapes tiny --systems sparse,ser_only
"""

import argparse
import datetime
import gc
import json
import math
import multiprocessing
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import torch

REPO = Path(__file__).resolve().parents[1]
SYSTEMS = {
    "sparse": ("sparse_merit.yaml", []),
    "sparse_ws": ("sparse_merit.yaml", ["--fusion_conf", "combine=weighted_sum"]),
    "dense": ("dense_merit.yaml", []),
    "naive_mtl": ("naive_mtl.yaml", []),
    "ser_only": ("ser_only.yaml", []),
}
TARGET_RATIO = 0.5  # sparse MERIT's fusion + heads vs. backbone, WavLM Large
aten = torch.ops.aten


def _rnn_flops(frames: int, weights) -> int:
    """2 x frames x (input-to-hidden + hidden-to-hidden weight entries)."""
    return 2 * frames * sum(math.prod(w) for w in weights if len(w) == 2)


# FlopCounterMode has no formula for the fused LSTM kernels: (T, B, in) or (B, T, in)
# inputs; every layer and direction is one call on CPU, one call in all on CUDA.
RNN_FLOPS = {
    aten.mkldnn_rnn_layer: lambda input, w_ih, w_hh, *a, **k: _rnn_flops(
        math.prod(input[:-1]), [w_ih, w_hh]
    ),
    aten._cudnn_rnn: lambda input, weight, *a, **k: _rnn_flops(
        math.prod(input[:-1]), weight
    ),
}


def build(system: str, ckpt: Path, device: str) -> torch.nn.Module:
    from espnet2_merit.tasks.merit import MeritTask

    config, extra = SYSTEMS[system]
    args = MeritTask.get_parser().parse_args(
        [
            "--config", str(REPO / "conf" / config),
            "--frontend_conf", "upstream=wavlm_local",
            "--frontend_conf", f"path_or_url={ckpt}",
            "--normalize", "utterance_mvn",
            "--emotion_list", "A,S,H,N",
            *extra,
        ]
    )  # fmt: skip
    args.emotion_list = ["A", "S", "H", "N"]
    for task in args.tasks.values():  # no training data here: unweighted classes
        task.get("loss_conf", {}).pop("class_weights", None)
    return MeritTask.build_model(args).to(device)


def batch(bsz: int, seconds: float, device: str) -> Dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    num = int(seconds * 16000)
    speech = 0.1 * torch.randn(bsz, num, generator=gen)
    lengths = torch.full((bsz,), num)
    data = {
        "speech": speech,
        "speech_lengths": lengths,
        "speech_ref1": 0.5 * speech,
        "speech_ref1_lengths": lengths,
        "emotion": torch.arange(bsz)[:, None] % 4,
    }
    return {k: v.to(device) for k, v in data.items()}


def _timed(fn, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _peak_gib(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB


def measure(job: Dict) -> Dict:
    """One system at one shape."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(job["threads"])
    device, dtype, reps = job["device"], job["dtype"], job["repeats"]
    torch.manual_seed(0)
    model = build(job["system"], Path(job["ckpt"]), device)
    data = batch(job["batch"], job["seconds"], device)
    speech, lengths = data["speech"], data["speech_lengths"]
    audio_sec = job["batch"] * job["seconds"]
    cast = dict(device_type=device, dtype=dtype, enabled=dtype != torch.float32)

    def backbone():
        with torch.no_grad(), torch.autocast(**cast):
            model.frontend(speech, lengths)

    def whole():
        with torch.no_grad(), torch.autocast(**cast):
            model.inference(speech, lengths)

    utterance_tasks = [
        t for t, head in model.heads.items() if head.target_kind != "waveform"
    ]

    def ser_path():  # emotion only (merit predict): no SE head
        with torch.no_grad(), torch.autocast(**cast):
            model.inference(speech, lengths, tasks=utterance_tasks)

    model.eval()
    fns = {"backbone": backbone, "whole": whole, "ser_path": ser_path}
    flops = {}
    for name, fn in fns.items():
        with FlopCounterMode(display=False, custom_mapping=RNN_FLOPS) as counter:
            fn()  # also the warm-up
        flops[name] = counter.get_total_flops() / audio_sec
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            times[name].append(_timed(fn, device))
    # The fastest of the interleaved repeats: other work on the machine only ever
    # adds time, and a median of few CPU repeats swung the ratios by +-0.05.
    t = {k: min(v) for k, v in times.items()}

    model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=5e-5)

    def step(inputs):
        with torch.autocast(**cast):
            loss = model(**inputs)[0]
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    _timed(lambda: step(data), device)  # warm-up; the optimizer state appears
    step_s = statistics.median(_timed(lambda: step(data), device) for _ in range(reps))
    backbone_params = sum(p.numel() for p in model.frontend.parameters())
    row = {
        "system": job["system"],
        "shape": job["shape"],
        "params_backbone": backbone_params,
        "params_rest": sum(p.numel() for p in model.parameters()) - backbone_params,
        "rtf_backbone": t["backbone"] / audio_sec,
        "rtf_whole": t["whole"] / audio_sec,
        "ratio": (t["whole"] - t["backbone"]) / t["backbone"],
        "ser_ratio": (t["ser_path"] - t["backbone"]) / t["backbone"],
        "gflops_backbone": flops["backbone"] / 1e9,
        "gflops_rest": (flops["whole"] - flops["backbone"]) / 1e9,
        "flop_ratio": (flops["whole"] - flops["backbone"]) / flops["backbone"],
        "ser_flop_ratio": (flops["ser_path"] - flops["backbone"]) / flops["backbone"],
        "step_s": step_s,
        "peak_gib": _peak_gib(device),
    }
    if job.get("throughput_batch"):
        big = batch(job["throughput_batch"], job["seconds"], device)
        torch.cuda.reset_peak_memory_stats()
        try:
            _timed(lambda: step(big), device)
            sec = statistics.median(
                _timed(lambda: step(big), device) for _ in range(reps)
            )
            row["throughput"] = job["throughput_batch"] / sec
            row["throughput_peak_gib"] = _peak_gib(device)
        except torch.cuda.OutOfMemoryError:
            row["throughput"] = row["throughput_peak_gib"] = "OOM"
    return row


def run_in_subprocess(job: Dict) -> Dict:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(measure, (job,))


def run_here(job: Dict) -> Dict:
    try:
        return measure(job)
    finally:
        gc.collect()
        torch.cuda.empty_cache()


def _fmt(x, spec: str) -> str:
    return x if isinstance(x, str) else format(x, spec)


def table(rows: List[Dict], device: str, throughput_batch: int) -> str:
    mem = "peak GPU memory (GiB)" if device == "cuda" else "peak RSS (GiB)"
    header = [
        "shape", "system", "params backbone (M)", "params rest (M)",
        "RTF backbone", "RTF whole", "(fusion+heads)/backbone, time",
        "GFLOPs/s audio, backbone", "GFLOPs/s audio, fusion+heads",
        "(fusion+heads)/backbone, FLOPs", "(fusion+SER head)/backbone, time",
        "(fusion+SER head)/backbone, FLOPs", "train step (s)", f"train step {mem}",
    ]  # fmt: skip
    if device == "cuda":
        header += [
            f"train utts/s at batch {throughput_batch}",
            f"{mem} at batch {throughput_batch}",
        ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [
            r["shape"], r["system"], f"{r['params_backbone'] / 1e6:.1f}",
            f"{r['params_rest'] / 1e6:.1f}", f"{r['rtf_backbone']:.4f}",
            f"{r['rtf_whole']:.4f}", f"{r['ratio']:.3f}",
            f"{r['gflops_backbone']:.1f}", f"{r['gflops_rest']:.1f}",
            f"{r['flop_ratio']:.3f}", f"{r['ser_ratio']:.3f}",
            f"{r['ser_flop_ratio']:.3f}", f"{r['step_s']:.3f}", f"{r['peak_gib']:.2f}",
        ]  # fmt: skip
        if device == "cuda":
            cells += [
                _fmt(r.get("throughput", "—"), ".1f"),
                _fmt(r.get("throughput_peak_gib", "—"), ".1f"),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default="base_plus,large")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=None, help="timed; median")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument(
        "--throughput_batch",
        type=int,
        default=32,
        help="GPU only: training throughput and memory at this batch size",
    )
    parser.add_argument("--out", default=str(REPO / "bench/results/cost.md"))
    return parser


def main():
    args = get_parser().parse_args()
    from espnet2_merit.utils.ssl_checkpoint import make_wavlm_checkpoint

    dtype = torch.bfloat16 if args.bf16 else torch.float32
    cuda = args.device == "cuda"
    repeats = args.repeats or (10 if cuda else 3)
    rows, start = [], time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shapes.split(","):
            ckpt = make_wavlm_checkpoint(Path(tmp) / f"{shape}.pt", shape)
            for system in args.systems.split(","):
                job = dict(
                    system=system, shape=shape, ckpt=str(ckpt), batch=args.batch,
                    seconds=args.seconds, repeats=repeats, threads=args.threads,
                    device=args.device, dtype=dtype,
                    throughput_batch=args.throughput_batch if cuda else 0,
                )  # fmt: skip
                rows.append(run_here(job) if cuda else run_in_subprocess(job))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if cuda:
        hw = f"{torch.cuda.get_device_name()}, {args.threads} CPU threads"
    else:
        hw = f"{platform.machine()} CPU, {args.threads} threads"
    text = [
        f"- date: {datetime.datetime.now():%Y-%m-%d %H:%M}",
        f"- device: {hw}, torch {torch.__version__}, "
        f"{'bf16 autocast' if args.bf16 else 'fp32'}",
        f"- {args.batch} utterances x {args.seconds:g} s; inference: fastest of "
        f"{repeats} interleaved repeats after a warm-up; training: median of "
        f"{repeats} steps (forward + backward + AdamW) after a warm-up step",
        "",
        table(rows, args.device, args.throughput_batch),
        "",
        "RTF: seconds of compute per second of audio. (fusion+heads)/backbone: "
        "(whole - backbone) / backbone, the whole model with the SE head's waveform; "
        "(fusion+SER head): the emotion-only path (`merit predict`). "
        "FLOPs: FlopCounterMode (matmul, "
        "convolution, attention, LSTM), inference, per second of audio. Peak RSS: "
        "the benchmark process's, after the training steps (weights, gradients, "
        "AdamW state, activations and the Python runtime).",
        "",
    ]
    for r in rows:
        if r["shape"] == "large" and r["system"] in ("sparse", "sparse_ws"):
            verdict = "PASS" if r["ratio"] <= TARGET_RATIO else "FAIL"
            text.append(
                f"- target, WavLM Large, {r['system']}: (fusion+heads)/backbone "
                f"{r['ratio']:.3f} in time ({r['flop_ratio']:.3f} in FLOPs; "
                f"emotion-only path {r['ser_ratio']:.3f}) ≤ {TARGET_RATIO}: "
                f"**{verdict}**"
            )
    text.append(f"\nWall time: {time.time() - start:.0f} s")
    out = "\n".join(text) + "\n"
    print(out)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(out, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
