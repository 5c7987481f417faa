"""Interface of task heads: one task on top of the fusion."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import torch

from espnet2_merit.merit.heads.targets import Target
from espnet2_merit.merit.loss.abs_loss import AbsLoss


@dataclass
class SEOutput:
    """Speech from a waveform-kind head (or its clean reference, analysed alike).

    Attributes:
        wav: (B, N) waveforms, zero past ``wav_lengths`` (None when not asked for:
            a spectral loss needs only ``spec``).
        wav_lengths: (B,), equal to the input lengths.
        spec: (B, T, F) spectral features a spectral loss compares.
        spec_lengths: (B,) valid frames.
    """

    wav: Optional[torch.Tensor]
    wav_lengths: torch.Tensor
    spec: torch.Tensor
    spec_lengths: torch.Tensor


class AbsTaskHead(torch.nn.Module, ABC):
    """A task: its fused feature -> predictions, its loss against the target, the
    statistics it reports, and its outputs at inference.

    ``ESPnetMeritModel`` holds one head per task (``tasks:`` in the config) and
    loops over them; nothing outside a head knows what its task is. To add one,
    subclass this in one file and register the class in ``tasks/merit.py``'s
    ``head_choices``:

    - class attributes: ``target_kind`` ("label", "vector" or "waveform": how
      its target is read and scored), ``default_target`` (the data name it trains
      on unless ``head_conf.target`` names another) and ``default_loss`` (a
      ``loss_choices`` name used when the task gives no ``loss``);
    - the constructor takes what the task passes to every head, ``input_size``
      (size of the task's fused feature), ``frame_shift`` (input samples per
      feature frame), ``target`` (the ``Target``) and ``loss`` (an ``AbsLoss`` of
      the same kind), followed by its own options (``head_conf``), and calls
      ``super().__init__(target, loss)`` first;
    - ``forward``: what the loss takes in training; ``predict``: the inference
      output, (B, C) class probabilities for a label target, (B, A) values for a
      vector target, an ``SEOutput`` with waveforms for a waveform target;
    - optionally ``reference`` (the batch's target in the form the loss compares
      with; default: the padded target tensor), ``stats`` (extra per-batch
      statistics), ``sufficient_stats`` (whole-dev-set model selection, see
      ``espnet2_merit.scoring.selection``) and ``extra_targets`` (further data
      the head reads beside its target, e.g. soft labels);
    - a head that reads the transcripts sets ``uses_text = True``: its
      constructor also takes ``text_layers`` and ``text_size`` (L and D of the
      config's ``text_frontend``, set by the task), and ``forward``/``predict``
      get the keyword arguments ``text_feats`` (B, S, L, D) and
      ``text_lengths`` (B,).

    Every method sees padded batches with lengths; padding must never reach a
    prediction, a statistic or the loss. Utterances without the target (``-``
    in its file: an unlabelled pool) are removed from ``pred`` and ``ref`` by
    the model before ``loss``, ``stats`` and ``sufficient_stats``; a
    ``reference`` that is not a tensor must be a tuple of per-utterance
    tensors (a ``NamedTuple``) so that they can be.
    """

    target_kind: str = ""
    default_target: str = ""
    default_loss: str = ""
    uses_text: bool = False

    def __init__(self, target: Target, loss: AbsLoss):
        super().__init__()
        if target.kind != self.target_kind:
            raise ValueError(
                f"{type(self).__name__} predicts a {self.target_kind} target, but "
                f"'{target.name}' is a {target.kind} target"
            )
        if loss.kind != self.target_kind:
            raise ValueError(
                f"loss {type(loss).__name__} is for {loss.kind} targets, but "
                f"{type(self).__name__} predicts a {self.target_kind} target"
            )
        self.target, self.loss_fn = target, loss

    @abstractmethod
    def forward(
        self,
        feats: torch.Tensor,
        feats_lengths: torch.Tensor,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
    ) -> Any:
        """Training predictions.

        Args:
            feats: (B, T, D) the task's fused features, zero past the lengths.
            feats_lengths: (B,).
            speech: (B, N) the noisy input waveforms in the heads' domain
                (``model_conf.head_domain``: normalised like the frontend's
                input, or as read); a waveform target arrives in the same one.
            speech_lengths: (B,).
        """

    @abstractmethod
    def predict(
        self,
        feats: torch.Tensor,
        feats_lengths: torch.Tensor,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
    ) -> Any:
        """Inference output (same arguments as ``forward``)."""

    @classmethod
    def extra_targets(cls, target: Target, head_conf: Dict[str, Any]) -> List[Target]:
        """Data the head reads besides ``target``, named by its options
        ``head_conf`` (the preprocessor parses them, the data check requires
        them); default none."""
        return []

    def reference(self, batch: Dict[str, torch.Tensor]) -> Any:
        """The batch's target as the loss takes it: (B,) class indices for a
        label target, the (B, A) tensor for a vector target."""
        return self.target.from_batch(batch)[0]

    def loss(self, pred: Any, ref: Any) -> torch.Tensor:
        return self.loss_fn(pred, ref)

    def stats(self, pred: Any, ref: Any) -> Dict[str, torch.Tensor]:
        """Extra statistics of a batch (the model prefixes them with the task)."""
        return {}

    def sufficient_stats(self, pred: Any, ref: Any) -> Dict[str, torch.Tensor]:
        """Per-batch sums for an exact whole-dev-set metric: ``{family: stats}``
        as built by ``espnet2_merit.scoring.selection`` (default: none)."""
        return {}
