"""ONNX export of one utterance-level task's path (frontend + fusion + head) of
a MERIT model: class probabilities or attribute values.

The graph is traced at one input length: the exported model takes a (1, N) waveform
of exactly the traced N samples at the model's rate (longer audio: run it over
windows of N samples and average, as ``Speech2EmotionEnhance`` does). Waveform
(enhancement) tasks are not exported.
"""

import contextlib
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from espnet2_merit.errors import MeritInputError


class TaskPath(torch.nn.Module):
    """(1, N) waveform -> (1, C) class probabilities or (1, A) values of one
    task: only that task's experts and head are in the graph."""

    def __init__(self, model: torch.nn.Module, task: str):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, speech: torch.Tensor) -> torch.Tensor:
        lengths = torch.full((speech.size(0),), speech.size(1), dtype=torch.long)
        _, _, preds = self.model.inference(speech, lengths, [self.task])
        return preds[self.task]


def check_exportable(model: torch.nn.Module) -> None:
    """Only frontends whose graph is known to trace correctly: s3prl's WavLM
    upstreams. HuBERT's s3prl wrapper fails to trace, Hugging Face wav2vec 2.0
    traces into a graph whose output ignores its input, and the filterbank's
    complex STFT has no ONNX export: refused rather than exported wrongly."""
    frontend = model.frontend
    upstream = getattr(frontend, "upstream_name", None)
    if upstream is None or not str(upstream).startswith("wavlm"):
        what = upstream or type(frontend).__name__
        raise MeritInputError(
            f"merit export supports s3prl WavLM frontends (wavlm_local, wavlm_large, "
            f"wavlm_base_plus, ...); this model's frontend is {what}"
        )


def exportable_task(model: torch.nn.Module, task: Optional[str]) -> str:
    """``task``, or the model's first utterance-level task; checked."""
    tasks = model.output_tasks(enhance=False)
    if not tasks:
        raise MeritInputError("this model has no utterance-level task to export")
    if task is None:
        return tasks[0]
    if task not in tasks:
        raise MeritInputError(f"--task '{task}': choose one of {tasks}")
    return task


@contextlib.contextmanager
def _unpadded_s3prl():
    """Make s3prl's upstreams traceable for a graph that takes one unpadded waveform.

    s3prl pads its list of waveforms with ``pad_sequence`` (no ONNX symbolic; for one
    waveform padding is stacking), and the transformer encoders zero padded frames
    with ``x[padding_mask] = 0``, exported as a Where that onnxruntime rejects (the
    mask lacks the feature axis). With one unpadded waveform the mask is all False,
    so the encoders are called without it. Both swaps last for the export only.
    """

    def stack(seqs, batch_first=False, padding_value=0.0, padding_side="right"):
        if len({s.shape for s in seqs}) != 1:
            return pad_sequence(seqs, batch_first, padding_value, padding_side)
        return torch.stack(list(seqs), 0 if batch_first else 1)

    patched = [
        m
        for name, m in list(sys.modules.items())
        if name.startswith("s3prl.")
        and getattr(m, "pad_sequence", None) is pad_sequence
    ]
    encoders = [
        m.TransformerEncoder
        for name, m in list(sys.modules.items())
        if name.startswith("s3prl.") and hasattr(m, "TransformerEncoder")
        and hasattr(m.TransformerEncoder, "extract_features")
    ]  # fmt: skip
    originals = [enc.extract_features for enc in encoders]

    def without_mask(original):
        def extract_features(self, x, padding_mask=None, *args, **kwargs):
            return original(self, x, None, *args, **kwargs)

        return extract_features

    for m in patched:
        m.pad_sequence = stack
    for enc, original in zip(encoders, originals):
        enc.extract_features = without_mask(original)
    try:
        yield
    finally:
        for m in patched:
            m.pad_sequence = pad_sequence
        for enc, original in zip(encoders, originals):
            enc.extract_features = original


def export_onnx(
    s2e, path: str, seconds: float = 4.0, task: Optional[str] = None
) -> str:
    """Export the path of ``task`` (default the first utterance-level task) of
    ``s2e.model``; check it against PyTorch with onnxruntime when it is
    installed. Returns a one-line report."""
    num = int(seconds * s2e.fs)
    if num < s2e.min_samples:
        raise MeritInputError(f"--seconds {seconds} is shorter than one model frame")
    check_exportable(s2e.model)
    task = exportable_task(s2e.model, task)
    wrapper = TaskPath(s2e.model, task).eval()
    example = torch.from_numpy(
        np.random.default_rng(0).standard_normal((1, num)).astype(np.float32) * 0.1
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), _unpadded_s3prl():
        expected = wrapper(example).numpy()
        torch.onnx.export(
            wrapper,
            (example,),
            path,
            input_names=["speech"],
            output_names=[task],
            opset_version=17,
            dynamo=False,
        )
    try:
        import onnxruntime
    except ImportError:
        return f"wrote {path} (task {task}, input: 1 x {num} samples; onnxruntime not installed)"
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {"speech": example.numpy()})[0]
    err = float(np.abs(got - expected).max())
    if err > 1e-4:
        raise RuntimeError(f"ONNX output differs from PyTorch by {err:.2e}")
    return f"wrote {path} (task {task}, input: 1 x {num} samples; max |onnx - torch| {err:.1e})"
