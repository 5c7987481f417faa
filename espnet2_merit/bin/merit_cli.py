#!/usr/bin/env python3
"""``merit``: emotion, enhancement and routing of your own audio files.

    merit predict a.wav b.flac --model model.zip          # a table
    merit predict *.wav --model model.zip --json          # for machines
    merit enhance noisy.wav -o clean.wav --model model.zip
    merit routes a.wav -o routes.png --model model.zip
    merit export --onnx ser.onnx --model model.zip

``--model`` is a packed zip, a URL or a Hugging Face repo; an experiment
directory's files can be given instead with ``--train_config`` and ``--model_file``.
"""

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import List, Tuple

import numpy as np
import soundfile

from espnet2_merit.errors import MeritInputError


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="merit", description="Speech emotion recognition and enhancement"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def model_args(p):
        p.add_argument("--model", help="Packed model: zip file, URL or HF repo")
        p.add_argument("--train_config", help="Or: a training config.yaml ...")
        p.add_argument("--model_file", help="... and its weights (*.pth)")
        p.add_argument("--device", default="cpu")
        p.add_argument("--window_sec", type=float, default=20.0)

    p = sub.add_parser("predict", help="Emotion of each file")
    p.add_argument("files", nargs="+")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON lines")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header")
    p.add_argument("--batch_size", type=int, default=1)
    model_args(p)

    p = sub.add_parser("enhance", help="Enhance one noisy file")
    p.add_argument("file")
    p.add_argument("-o", "--output", required=True)
    model_args(p)

    p = sub.add_parser("routes", help="Plot per-frame expert choices per task")
    p.add_argument("file")
    p.add_argument("-o", "--output", required=True, help="PNG file")
    model_args(p)

    p = sub.add_parser("export", help="Export the SER path (frontend+fusion+head)")
    p.add_argument("--onnx", required=True, help="Output .onnx file")
    p.add_argument("--seconds", type=float, default=4.0, help="Example input length")
    model_args(p)
    return parser


def _load(args, enhance: bool):
    from espnet2_merit.bin.merit_inference import Speech2EmotionEnhance

    kwargs = dict(device=args.device, window_sec=args.window_sec, enhance=enhance)
    if args.model:
        return Speech2EmotionEnhance.from_pretrained(args.model, **kwargs)
    if args.train_config:
        return Speech2EmotionEnhance(args.train_config, args.model_file, **kwargs)
    raise MeritInputError("give --model (zip, URL, HF repo) or --train_config")


def _read(path: str) -> Tuple[np.ndarray, int]:
    if not Path(path).is_file():
        raise MeritInputError(f"{path}: no such file")
    try:
        wav, fs = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile's message does not say which file
        raise MeritInputError(f"{path}: not a readable audio file ({e})") from e
    if len(wav) == 0:
        raise MeritInputError(f"{path}: the file has no samples")
    return wav, fs


def _check(s2e, path: str, wav: np.ndarray, fs: int):
    if len(wav) * s2e.fs < s2e.min_samples * fs:
        raise MeritInputError(
            f"{path}: {len(wav) / fs:.3f} s is shorter than one model frame "
            f"({s2e.min_samples / s2e.fs:.3f} s)"
        )


def predict(args) -> str:
    from tqdm import tqdm

    s2e = _load(args, enhance=False)
    rows: List[dict] = []
    files = list(args.files)
    bar = tqdm(total=len(files), disable=len(files) < 2, file=sys.stderr, unit="file")
    for start in range(0, len(files), args.batch_size):
        paths = files[start : start + args.batch_size]
        audio = [_read(p) for p in paths]
        for p, (wav, fs) in zip(paths, audio):
            _check(s2e, p, wav, fs)
        rates = {fs for _, fs in audio}
        if len(rates) == 1:
            results = s2e.batch([w for w, _ in audio], fs=rates.pop())
        else:
            results = [s2e(w, fs=fs) for w, fs in audio]
        for p, res in zip(paths, results):
            rows.append({"file": p, **res.to_dict()})
        bar.update(len(paths))
    bar.close()
    return _format(rows, "json" if args.json else "csv" if args.csv else "table")


def _format(rows: List[dict], how: str) -> str:
    if how == "json":
        return "\n".join(json.dumps(r) for r in rows)
    columns = ["file", "emotion", "confidence"]
    attrs = sorted({k for r in rows for k in (r.get("attributes") or {})})
    flat = [
        {
            "file": r["file"],
            "emotion": r.get("label") or "",
            "confidence": f"{r['confidence']:.3f}" if "confidence" in r else "",
            **{a: f"{r['attributes'][a]:.3f}" for a in r.get("attributes") or {}},
        }
        for r in rows
    ]
    columns += attrs
    if how == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(flat)
        return buf.getvalue().rstrip("\n")
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in flat)) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    for r in flat:
        lines.append(
            "  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(columns, widths))
        )
    return "\n".join(line.rstrip() for line in lines)


def enhance(args) -> str:
    s2e = _load(args, enhance=True)
    if s2e.model.se_head is None:
        raise MeritInputError("this model has no SE head: it cannot enhance")
    wav, fs = _read(args.file)
    _check(s2e, args.file, wav, fs)
    res = s2e(wav, fs=fs)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(args.output, res.enhanced, fs)
    return f"wrote {args.output} ({len(res.enhanced) / fs:.2f} s at {fs} Hz)"


def routes(args) -> str:
    s2e = _load(args, enhance=False)
    wav, fs = _read(args.file)
    _check(s2e, args.file, wav, fs)
    res = s2e(wav, fs=fs)
    if not res.routes:
        raise MeritInputError(
            f"this model's fusion ({type(s2e.model.fusion).__name__}) does not route"
        )
    plot_routes(wav.mean(-1), fs, res, s2e.model.fusion.num_experts, args.output)
    return f"wrote {args.output}"


def plot_routes(wav: np.ndarray, fs: int, res, num_experts: int, output: str):
    """Spectrogram on top; per task, the chosen expert of each frame shaded by its
    gate probability."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(res.routes)
    fig, axes = plt.subplots(
        1 + len(tasks),
        1,
        sharex=True,
        figsize=(10, 2.2 + 1.2 * len(tasks)),
        gridspec_kw={"height_ratios": [2] + [1] * len(tasks)},
    )
    duration = len(wav) / fs
    axes[0].specgram(wav, Fs=fs, NFFT=512, noverlap=384, cmap="magma")
    axes[0].set_ylabel("Hz")
    title = res.label or ""
    if res.probs is not None:
        title = f"{res.label} ({res.probs.max():.2f})"
    axes[0].set_title(f"emotion: {title}" if title else "routing")
    for ax, task in zip(axes[1:], tasks):
        r = res.routes[task]
        grid = np.zeros((num_experts, len(r.times)))
        for k in range(r.experts.shape[1]):
            grid[r.experts[:, k], np.arange(len(r.times))] = r.gates[:, k]
        step = r.times[1] - r.times[0] if len(r.times) > 1 else duration
        ax.imshow(
            grid,
            aspect="auto",
            origin="lower",
            cmap="Blues",
            vmin=0,
            vmax=1,
            extent=(r.times[0], r.times[-1] + step, -0.5, num_experts - 0.5),
            interpolation="nearest",
        )
        ax.set_yticks(range(num_experts))
        ax.set_ylabel(f"{task}\nexpert")
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(0, duration)
    fig.tight_layout()
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=100)
    plt.close(fig)


def export(args) -> str:
    from espnet2_merit.bin.merit_export import export_onnx

    s2e = _load(args, enhance=False)
    return export_onnx(s2e, args.onnx, seconds=args.seconds)


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    try:
        commands = dict(predict=predict, enhance=enhance, routes=routes, export=export)
        print(commands[args.command](args))
    except MeritInputError as e:
        sys.exit(f"merit {args.command}: error: {e}")


if __name__ == "__main__":
    main()
