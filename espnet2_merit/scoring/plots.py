"""Every plot of the package: confusion matrices and expert usage (scoring,
RESULTS.md) and per-frame routing (``merit routes``). Images are written
atomically; matplotlib is imported only when a plot is drawn."""

import os
from pathlib import Path
from typing import Dict

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def atomic_savefig(fig, path: Path, dpi: int = 120):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    os.replace(tmp, path)


def plot_confusion(ser: Dict, path: Path, title: str):
    """Confusion matrix image: colour by row share (recall), counts written in."""
    plt = _pyplot()

    cm = np.array(ser["confusion_matrix"], dtype=float)
    classes = ser["classes"]
    rows = cm.sum(1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    size = 1.2 + 0.7 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            color = "white" if share[i, j] > 0.5 else "black"
            text = f"{int(cm[i, j])}\n{share[i, j]:.0%}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title(f"{title}\nF1-macro {ser['f1_macro']:.4f}, acc {ser['accuracy']:.4f}")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of reference class")
    atomic_savefig(fig, path)
    plt.close(fig)


def plot_usage(usage: Dict[float, np.ndarray], path: Path, title: str):
    plt = _pyplot()

    snrs = sorted(usage)
    num = len(usage[snrs[0]])
    width = 0.8 / num
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(snrs), 3.2))
    x = np.arange(len(snrs))
    for e in range(num):
        ax.bar(x + (e - (num - 1) / 2) * width, [usage[s][e] for s in snrs], width,
               label=f"expert {e}")  # fmt: skip
    ax.set_xticks(x, [f"{s:g} dB" for s in snrs])
    ax.set_ylabel("share of frames")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8)
    atomic_savefig(fig, path)
    plt.close(fig)


def route_grid(experts: np.ndarray, gates: np.ndarray, num_experts: int) -> np.ndarray:
    """(T, k) experts (-1: a slot the frame does not use) and gates -> (E, T) gate
    of each expert at each frame, 0 where not chosen."""
    grid = np.zeros((num_experts, len(experts)))
    for k in range(experts.shape[1]):
        used = experts[:, k] >= 0
        grid[experts[used, k], np.arange(len(experts))[used]] = gates[used, k]
    return grid


def plot_routes(wav: np.ndarray, fs: int, res, num_experts: int, output: str):
    """Spectrogram on top; per task, the chosen expert of each frame shaded by its
    gate probability."""
    plt = _pyplot()

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
        grid = route_grid(r.experts, r.gates, num_experts)
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
    atomic_savefig(fig, Path(output), dpi=100)
    plt.close(fig)
