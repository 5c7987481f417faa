"""What inference returns for one recording."""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np


@dataclass
class Routes:
    """One task's per-frame routing.

    Attributes:
        experts: (T, k) chosen experts per frame; -1 in the slots a frame does
            not use (top-p routing chooses a variable number, at most k).
        gates: (T, k) their (renormalised) gate probabilities, 0 where unused.
        times: (T,) start time of each frame in seconds.
    """

    experts: np.ndarray
    gates: np.ndarray
    times: np.ndarray

    def usage(self, num_experts: int) -> np.ndarray:
        """(E,) share of frames routed to each expert (top-1 choice)."""
        counts = np.bincount(self.experts[:, 0], minlength=num_experts)
        return counts / max(len(self.experts), 1)

    def experts_per_frame(self) -> np.ndarray:
        """(T,) number of experts each frame was routed to."""
        return (self.experts >= 0).sum(-1)


@dataclass
class TaskResult:
    """One task's output for a recording.

    Attributes:
        kind: "label" (``value``: (C,) class probabilities), "vector" ((A,)
            values) or "waveform" ((N,) enhanced samples at the input's rate).
        target: The data name the task predicts (``emotion``, ...).
        value: See ``kind``.
        names: Class names (label) or value names (vector), in ``value`` order.
    """

    kind: str
    target: str
    value: np.ndarray
    names: Optional[List[str]] = None

    @property
    def label(self) -> Optional[str]:
        """The most probable class of a label task."""
        if self.kind != "label":
            return None
        return self.names[int(np.argmax(self.value))]

    def to_dict(self) -> Dict[str, Any]:
        if self.kind == "label":
            return {
                "label": self.label,
                "confidence": float(self.value.max()),
                "probs": dict(zip(self.names, map(float, self.value))),
            }
        if self.kind == "vector":
            return {"values": dict(zip(self.names, map(float, self.value)))}
        return {"samples": int(len(self.value))}


@dataclass
class WindowResult:
    """Utterance-level outputs of one analysis window of a long recording."""

    start: float
    end: float
    tasks: Dict[str, TaskResult]


@dataclass
class EmotionEnhanceResult:
    """Everything the model says about one recording.

    Attributes:
        fs: Sampling rate of the input (and of enhanced waveforms).
        tasks: Task name -> its output, in the model's order.
        routes: Task -> per-frame routing (mixture-of-experts fusions only).
        windows: Per-window utterance-level outputs (one window for short
            recordings).
        silent: The input is digitally silent (all samples zero): its labels say
            nothing about it.
        text: The transcript the model read (given, or the ASR model's), for a
            model with a text frontend; None otherwise.
    """

    fs: int
    tasks: Dict[str, TaskResult] = field(default_factory=dict)
    routes: Dict[str, Routes] = field(default_factory=dict)
    windows: List[WindowResult] = field(default_factory=list)
    silent: bool = False
    text: Optional[str] = None

    def first(self, kind: str, target: Optional[str] = None) -> Optional[TaskResult]:
        """The first task of a kind (preferring the one predicting ``target``)."""
        found = [t for t in self.tasks.values() if t.kind == kind]
        preferred = [t for t in found if t.target == target]
        return (preferred or found or [None])[0]

    # The common questions, answered from the first task that can answer them.
    @property
    def emotion(self) -> Optional[TaskResult]:
        return self.first("label", "emotion")

    @property
    def label(self) -> Optional[str]:
        return self.emotion.label if self.emotion else None

    @property
    def probs(self) -> Optional[np.ndarray]:
        return self.emotion.value if self.emotion else None

    @property
    def emotion_list(self) -> Optional[List[str]]:
        return self.emotion.names if self.emotion else None

    @property
    def attributes(self) -> Optional[Dict[str, float]]:
        task = self.first("vector", "emotion_attr")
        return dict(zip(task.names, map(float, task.value))) if task else None

    @property
    def enhanced(self) -> Optional[np.ndarray]:
        task = self.first("waveform")
        return task.value if task else None

    def to_dict(self, frames: bool = False) -> Dict[str, Any]:
        """JSON-friendly summary (per-frame routes only with ``frames``)."""
        out: Dict[str, Any] = {"label": self.label}
        if self.probs is not None:
            out["confidence"] = float(self.probs.max())
            out["probs"] = dict(zip(self.emotion_list, map(float, self.probs)))
        if self.attributes is not None:
            out["attributes"] = self.attributes
        out["silent"] = self.silent
        if self.text is not None:
            out["text"] = self.text
        out["tasks"] = {
            name: t.to_dict() for name, t in self.tasks.items() if t.kind != "waveform"
        }
        out["windows"] = [
            {
                "start": w.start,
                "end": w.end,
                **{n: t.to_dict() for n, t in w.tasks.items()},
            }
            for w in self.windows
        ]
        if frames:
            out["routes"] = {
                t: {
                    "times": r.times.round(4).tolist(),
                    "experts": r.experts.tolist(),
                    "gates": r.gates.round(4).tolist(),
                }
                for t, r in self.routes.items()
            }
        return out
