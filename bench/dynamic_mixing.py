#!/usr/bin/env python3
"""Data-loader throughput of dynamic mixing against reading pre-mixed files.

One measurement is one training epoch of ESPnet's data pipeline as MeritTask
builds it (``ESPnetDataset`` -> ``MeritPreprocessor`` -> ``CommonCollateFn`` in a
``DataLoader``, a new one per epoch as ESPnet's iterator factories make it, so
worker start-up is included), over the same utterances, in four conditions:

- pre-mixed: the stage-2 mixtures (``wav.scp``) and their references
  (``spk1.scp``), two files read per utterance;
- dynamic, noise cached: the clean speech (``spk1.scp``) read, noise mixed in by
  ``DynamicMixer`` from its cache (preloaded before the workers fork; the preload
  time is reported apart: a run pays it once);
- dynamic, noise read per draw: ``cache_mb: 0``, the noise file read (and
  resampled if needed) for every utterance;
- dynamic, noise + RIR: cached noise, every utterance reverberated
  (``rir_prob: 1``, ``rir_reference: early``).

with 0 workers (the main process loads) and 2 workers, repeated ``--repeats``
times, the conditions interleaved inside each repetition so that a load change
of the machine hits all of them. Reported: utterances/s per loading process
(median and min-max over repetitions) and the ratio to pre-mixed.

Data: by default the mini recipe's training set (``dump/raw/train_sim`` and
``data/noise/train.scp`` of ``egs2/mini_msp_podcast/merit1``, RIRs from
``data/rir/train.scp`` there if present); in a fresh clone either prepare it
(``cd egs2/mini_msp_podcast/merit1 && ./run.sh --stage 1 --stop_stage 5``) or
pass ``--generate`` for generated speech and noise (no recipe run). Without an
RIR pool the bench writes 8 synthetic RIRs (exponentially decaying noise,
RT60 0.2-0.6 s).

    python bench/dynamic_mixing.py                  # ~2 min on 2 cores
    python bench/dynamic_mixing.py --generate --num_utts 16 --repeats 1
"""

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "egs2" / "mini_msp_podcast" / "merit1"
CONDITIONS = (
    "pre-mixed",
    "dynamic, noise cached",
    "dynamic, noise read per draw",
    "dynamic, noise + RIR",
)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data_dir",
        type=Path,
        default=RECIPE / "dump/raw/train_sim",
        help="Stage-4 training dir with wav.scp (mixtures) and spk1.scp",
    )
    p.add_argument("--noise_scp", type=Path, default=RECIPE / "data/noise/train.scp")
    p.add_argument(
        "--rir_scp",
        type=Path,
        default=RECIPE / "data/rir/train.scp",
        help="RIR pool; synthetic RIRs when the file does not exist",
    )
    p.add_argument(
        "--generate",
        action="store_true",
        help="Generated speech and noise instead of --data_dir/--noise_scp",
    )
    p.add_argument("--num_utts", type=int, default=160)
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument(
        "--max_speech_sec",
        type=float,
        default=4.0,
        help="Crop as the tiny configs do (0: whole utterances)",
    )
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--passes",
        type=int,
        default=2,
        help="Passes over the utterances per measurement (longer ones)",
    )
    p.add_argument("--fs", type=int, default=16000)
    p.add_argument("--out", type=Path, default=REPO / "bench/results/dynamic_mixing.md")
    return p  # fmt: skip


# ------------------------------------------------------------------ data
def generate(root: Path, num_utts: int, fs: int) -> Tuple[Path, Path]:
    """A generated training dir and a noise pool of 10 files of 4-8 s."""
    from espnet2_merit.utils.synthetic import make_data_dir

    data = make_data_dir(root / "train", num_utts=num_utts, fs=fs, max_sec=6.0)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(10):
        noise = rng.standard_normal(int(rng.uniform(4, 8) * fs))
        if i % 2:  # smoothed: a darker colour
            noise = np.convolve(noise, np.ones(16) / 16, mode="same")
        path = root / "noise" / f"noise{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, 0.1 * noise / np.abs(noise).max(), fs)
        lines.append(f"noise{i} {path}")
    (root / "noise.scp").write_text("\n".join(lines) + "\n")
    return data, root / "noise.scp"


def synthetic_rirs(root: Path, fs: int, num: int = 8) -> Path:
    """``num`` RIRs: a direct path after 2-8 ms, then exponentially decaying
    noise with RT60 0.2-0.6 s."""
    rng = np.random.default_rng(1)
    lines = []
    for i in range(num):
        rt60 = rng.uniform(0.2, 0.6)
        t = np.arange(int(rt60 * fs)) / fs
        rir = 0.2 * rng.standard_normal(len(t)) * 10 ** (-3 * t / rt60)
        rir[int(rng.uniform(0.002, 0.008) * fs)] = 1.0
        path = root / "rirs" / f"rir{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, rir / np.abs(rir).max(), fs, subtype="FLOAT")
        lines.append(f"rir{i} {path}")
    (root / "rir.scp").write_text("\n".join(lines) + "\n")
    return root / "rir.scp"


def subset(scp: Path, keys: List[str], out: Path) -> Path:
    from espnet2_merit.utils.datadir import read_kaldi

    table = read_kaldi(scp)
    out.write_text("".join(f"{k} {table[k]}\n" for k in keys))
    return out


def rel(path: Path) -> str:
    """``path`` relative to the repository when inside it (the results file)."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


# ------------------------------------------------------------------ measurement
def build(cond: str, lists: Dict[str, Path], args, epoch: int):
    """(dataset, preprocessor, preload seconds) of one condition."""
    from espnet2.train.dataset import ESPnetDataset

    from espnet2_merit.merit.heads.targets import WaveformTarget
    from espnet2_merit.simulation.dynamic_mixing import build_mixer
    from espnet2_merit.train.preprocessor import MeritPreprocessor

    mixer = None
    if cond != "pre-mixed":
        conf = {"noise_scp": str(lists["noise"]), "snr_range": [0, 10]}
        if cond.endswith("read per draw"):
            conf["cache_mb"] = 0
        if cond.endswith("RIR"):
            conf.update(rir_scp=str(lists["rir"]), rir_prob=1.0, rir_reference="early")
        mixer = build_mixer(conf, args.fs, default_seed=0)
    pre = MeritPreprocessor(
        True,
        [WaveformTarget("speech_ref1")],
        fs=args.fs,
        max_speech_sec=args.max_speech_sec or None,
        crop="random",
        mixer=mixer,
    )
    if mixer is None:
        names = [(str(lists["noisy"]), "speech", "sound"),
                 (str(lists["clean"]), "speech_ref1", "sound")]  # fmt: skip
    else:
        names = [(str(lists["clean"]), "speech", "sound")]
    start = time.perf_counter()
    pre.set_epoch(epoch)  # what EpochIterFactory does; preloads the noise
    preload = time.perf_counter() - start
    return ESPnetDataset(names, preprocess=pre), preload


def one_epoch(
    dataset, keys: List[str], batch_size: int, workers: int
) -> Tuple[float, float]:
    """(seconds to load every batch of ``keys`` (ids may repeat) through a new
    DataLoader, seconds until its first batch arrived)."""
    from espnet2.train.collate_fn import CommonCollateFn
    from torch.utils.data import DataLoader

    batches = [keys[i : i + batch_size] for i in range(0, len(keys), batch_size)]
    start = time.perf_counter()
    loader = DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=workers,
        collate_fn=CommonCollateFn(float_pad_value=0.0, int_pad_value=-1),
    )
    n, first = 0, None
    for uids, batch in loader:
        n += len(uids)
        first = first or time.perf_counter() - start
    assert n == len(keys)
    return time.perf_counter() - start, first


def measure(args, lists, keys) -> Tuple[Dict, Dict]:
    """{(cond, workers): [utt/s per process, ...]}, the same after the first
    batch (worker start-up left out), {cond: [preload s, ...]}."""
    rates: Dict[Tuple[str, int], List[float]] = {}
    steady: Dict[Tuple[str, int], List[float]] = {}
    preloads: Dict[str, List[float]] = {}
    for cond in CONDITIONS:  # untimed: the OS page cache holds every file after it
        one_epoch(build(cond, lists, args, epoch=0)[0], keys, args.batch_size, 0)
    keys = keys * args.passes
    for rep in range(args.repeats):
        for workers in args.workers:
            for cond in CONDITIONS:
                dataset, preload = build(cond, lists, args, epoch=rep + 1)
                seconds, first = one_epoch(dataset, keys, args.batch_size, workers)
                per_proc = len(keys) / seconds / max(1, workers)
                rates.setdefault((cond, workers), []).append(per_proc)
                rest = (len(keys) - args.batch_size) / (seconds - first)
                steady.setdefault((cond, workers), []).append(rest / max(1, workers))
                preloads.setdefault(cond, []).append(preload)
                print(f"repeat {rep + 1}, {workers} workers, {cond}: "
                      f"{per_proc:.1f} utt/s per process ({seconds:.2f} s)")  # fmt: skip
    return rates, steady, preloads


def table(rates, steady, preloads, workers_list) -> str:
    lines = [
        "| condition | workers | utt/s per process, median (min-max) | "
        "utt/s in all | vs pre-mixed | after the first batch: utt/s per process | "
        "vs pre-mixed | noise preload (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for workers in workers_list:
        base = statistics.median(rates[("pre-mixed", workers)])
        base_s = statistics.median(steady[("pre-mixed", workers)])
        for cond in CONDITIONS:
            r = rates[(cond, workers)]
            med = statistics.median(r)
            pre = statistics.median(preloads[cond])
            st = steady[(cond, workers)]
            med_s = statistics.median(st)
            lines.append(
                f"| {cond} | {workers} | {med:.1f} ({min(r):.1f}-{max(r):.1f}) | "
                f"{med * max(1, workers):.1f} | {med / base:.2f}x | "
                f"{med_s:.1f} ({min(st):.1f}-{max(st):.1f}) | {med_s / base_s:.2f}x | "
                + (f"{pre:.3f}" if cond.endswith(("cached", "RIR")) else "-")
                + " |"
            )
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> str:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in each DataLoader worker: per-process rates
    try:
        return run(get_parser().parse_args(argv))
    finally:
        torch.set_num_threads(threads)  # main() may run inside another program


def run(args: argparse.Namespace) -> str:
    import torch

    from espnet2_merit.utils.datadir import read_kaldi

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.generate:
            data_dir, noise_scp = generate(tmp / "gen", args.num_utts, args.fs)
            source = (
                f"generated ({args.num_utts} harmonic 'voices' of 1-6 s, 10 noises)"
            )
        else:
            data_dir, noise_scp = args.data_dir, args.noise_scp
            for f in (data_dir / "wav.scp", data_dir / "spk1.scp", noise_scp):
                if not f.is_file():
                    raise SystemExit(
                        f"{f}: no such file; prepare the mini corpus (cd "
                        f"{RECIPE.relative_to(REPO)} && ./run.sh --stage 1 "
                        "--stop_stage 5) or pass --generate"
                    )
            source = f"{rel(data_dir)} (noise pool {rel(noise_scp)})"
        keys = sorted(read_kaldi(data_dir / "wav.scp"))[: args.num_utts]
        rir_scp = args.rir_scp
        rir_note = f"RIR pool {rel(rir_scp)}"
        if args.generate or not rir_scp.is_file():
            rir_scp = synthetic_rirs(tmp, args.fs)
            rir_note = "8 synthetic RIRs (exponentially decaying noise, RT60 0.2-0.6 s)"
        lists = {
            "noisy": subset(data_dir / "wav.scp", keys, tmp / "wav.scp"),
            "clean": subset(data_dir / "spk1.scp", keys, tmp / "spk1.scp"),
            "noise": noise_scp,
            "rir": rir_scp,
        }
        seconds = sum(
            soundfile.info(p).duration for p in read_kaldi(lists["clean"]).values()
        )
        noise_files = len(read_kaldi(noise_scp))
        load = os.getloadavg()
        rates, steady, preloads = measure(args, lists, keys)
        load_after = os.getloadavg()
    crop = f"cropped to {args.max_speech_sec:g} s" if args.max_speech_sec else "whole"
    text = f"""## Data-loader throughput: dynamic mixing vs pre-mixed files (`bench/dynamic_mixing.py`)

- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} CPU cores ({platform.machine()}), torch threads {torch.get_num_threads()} in the main process and in each DataLoader worker; load average {load[0]:.1f} before, {load_after[0]:.1f} after (other jobs share the machine)
- data: {source}; {len(keys)} utterances, {seconds / 60:.1f} min of speech, {crop} (random window, before mixing), batch {args.batch_size}; {noise_files} noise files; {rir_note}
- one measurement = {args.passes} pass(es) over the utterances through a new DataLoader (worker start-up included), after one untimed warm-up pass per condition (audio in the OS page cache); {args.repeats} repetitions, conditions interleaved within each; SNR uniform in [0, 10] dB; the RIR condition reverberates every utterance (early reference, 50 ms)
- utt/s per process: utterances / wall time / max(1, workers); "after the first batch": (utterances - one batch) / (wall time - time to the first batch) / max(1, workers), i.e. without the DataLoader's worker start-up, which ESPnet pays once per epoch

{table(rates, steady, preloads, args.workers)}
"""
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return text


if __name__ == "__main__":
    main()
