"""ONNX export of one utterance-level task's path (frontend + fusion + head) of
a MERIT model: class probabilities or attribute values.

The graph is traced at one input length: the exported model takes a (1, N) waveform
of exactly the traced N samples at the model's rate (longer audio: run it over
windows of N samples and average, as ``Speech2EmotionEnhance`` does). Waveform
(enhancement) tasks are not exported.

A model with a text frontend takes the transcript too: inputs ``text`` (1, S)
int64 token ids of its tokenizer (``Speech2EmotionEnhance.text_frontend.tokenizer``;
the number of tokens S is a dynamic axis) and ``text_lengths`` (1,) int64, the
valid tokens (positions past it are padding, never read).
"""

import contextlib
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from espnet2_merit.errors import MeritInputError

# A transcript whose token ids trace a text frontend (any words do).
EXAMPLE_TEXT = "this is what the example input says"


class TaskPath(torch.nn.Module):
    """(1, N) waveform (and (1, S) token ids with (1,) lengths for a model with
    a text frontend) -> (1, C) class probabilities or (1, A) values of one task:
    only that task's experts and head are in the graph."""

    def __init__(self, model: torch.nn.Module, task: str):
        super().__init__()
        self.model, self.task = model, task

    def forward(
        self,
        speech: torch.Tensor,
        text: Optional[torch.Tensor] = None,
        text_lengths: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        lengths = torch.full((speech.size(0),), speech.size(1), dtype=torch.long)
        _, _, preds = self.model.inference(
            speech, lengths, [self.task], text=text, text_lengths=text_lengths
        )
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
    rng = np.random.default_rng(0)
    example = {
        "speech": torch.from_numpy(
            rng.standard_normal((1, num)).astype(np.float32) * 0.1
        )
    }
    names, dynamic = ["speech"], {}
    if s2e.reads_text:
        ids = s2e.tokens(EXAMPLE_TEXT)
        example.update(text=ids[None], text_lengths=torch.tensor([len(ids)]))
        names += ["text", "text_lengths"]
        dynamic = {"text": {1: "tokens"}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), _unpadded_s3prl():
        expected = wrapper(**example).numpy()
        torch.onnx.export(
            wrapper,
            tuple(example[n] for n in names),
            path,
            input_names=names,
            output_names=[task],
            dynamic_axes=dynamic or None,
            opset_version=17,
            dynamo=False,
        )
    inputs = f"1 x {num} samples" + (
        ", text: 1 x S token ids, text_lengths: 1" if s2e.reads_text else ""
    )
    try:
        import onnxruntime
    except ImportError:
        return f"wrote {path} (task {task}, input: {inputs}; onnxruntime not installed)"
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {n: example[n].numpy() for n in names})[0]
    err = float(np.abs(got - expected).max())
    if err > 1e-4:
        raise RuntimeError(f"ONNX output differs from PyTorch by {err:.2e}")
    return f"wrote {path} (task {task}, input: {inputs}; max |onnx - torch| {err:.1e})"
