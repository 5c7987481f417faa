"""Attentive statistics pooling + MLP: the paper's emotion classifier."""

from typing import Any, Dict, List, NamedTuple, Optional

import torch
from typeguard import typechecked

from espnet2_merit.merit.heads.abs_task_head import AbsTaskHead
from espnet2_merit.merit.heads.targets import LabelTarget, Target, VoteTarget
from espnet2_merit.merit.loss.abs_loss import AbsLoss
from espnet2_merit.scoring import selection
from espnet2_merit.utils.masks import valid_mask


class AttentiveStatsPooling(torch.nn.Module):
    """Attention-weighted mean and standard deviation over valid frames.

    w_t = softmax_t(v . tanh(W h_t + b)); out = [sum_t w_t h_t, sqrt(sum_t w_t h_t^2 -
    mean^2)]: (B, T, D) -> (B, 2D). Padding frames get zero weight.
    """

    def __init__(self, input_size: int):
        super().__init__()
        self.proj = torch.nn.Linear(input_size, input_size)
        self.score = torch.nn.Linear(input_size, 1, bias=False)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        scores = self.score(torch.tanh(self.proj(x))).squeeze(-1)  # (B, T)
        mask = valid_mask(lengths, x.size(1))
        weights = scores.float().masked_fill(~mask, float("-inf")).softmax(-1)
        weights = weights.to(x.dtype)[..., None]
        mean = (weights * x).sum(1)
        var = (weights * x.pow(2)).sum(1) - mean.pow(2)
        return torch.cat([mean, var.clamp(min=1e-5).sqrt()], dim=-1)


# The hidden layer's activation (head_conf.activation): ReLU (the paper's), or Mish
# and GELU, which Interspeech 2025 challenge systems chose (arXiv 2508.07282).
ACTIVATIONS = {"relu": torch.nn.ReLU, "mish": torch.nn.Mish, "gelu": torch.nn.GELU}


class PooledHead(AbsTaskHead):
    """Pooling (-> 2D) -> dropout -> Linear(hidden) -> LayerNorm -> activation ->
    dropout -> Linear(outputs): one output per class or per value of the target."""

    def __init__(
        self,
        input_size: int,
        target: Target,
        loss: AbsLoss,
        num_outputs: int,
        hidden_size: int,
        dropout: float,
        activation: str = "relu",
    ):
        super().__init__(target, loss)
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"head_conf.activation={activation!r}: expected one of "
                f"{sorted(ACTIVATIONS)}"
            )
        self.pooling = AttentiveStatsPooling(input_size)
        self.mlp = torch.nn.Sequential(
            torch.nn.Dropout(dropout),
            torch.nn.Linear(2 * input_size, hidden_size),
            torch.nn.LayerNorm(hidden_size),
            ACTIVATIONS[activation](),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden_size, num_outputs),
        )
        self.num_outputs = num_outputs

    def forward(self, feats, feats_lengths, speech=None, speech_lengths=None):
        """(B, T, D) -> (B, num_outputs) (the input waveform is not used)."""
        return self.mlp(self.pooling(feats, feats_lengths))


class SoftReference(NamedTuple):
    """A batch's labels with their soft form."""

    index: torch.Tensor  # (B,) class indices (scored, and the fallback)
    dist: torch.Tensor  # (B, C) the target distribution the loss trains on


class AttentivePoolingClassifier(PooledHead):
    """Class logits of a label target (emotion, gender, ...); predicts class
    probabilities.

    With ``soft_labels`` (a data name such as ``emotion_votes``) the loss trains
    on the annotators' vote distribution (soft labels, as Interspeech 2025
    challenge systems did, arXiv 2508.07282) instead of the one-hot label; an
    utterance without votes for the listed classes trains on its label.
    Accuracy and F1 are always of the hard labels.
    """

    target_kind = "label"
    default_target = "emotion"
    default_loss = "ce"

    @typechecked
    def __init__(
        self,
        input_size: int,
        frame_shift: int,
        target: LabelTarget,
        loss: AbsLoss,
        hidden_size: int = 1024,
        dropout: float = 0.5,
        activation: str = "relu",
        soft_labels: Optional[str] = None,
    ):
        """Build the head.

        Args:
            input_size: Size D of the task's fused feature.
            frame_shift: Not used (utterance-level output).
            target: The label target; one output per class.
            loss: A label loss (``ce``, ``focal``).
            hidden_size: Size of the hidden layer.
            dropout: Dropout before each linear layer.
            activation: The hidden layer's: ``relu``, ``mish`` or ``gelu``.
            soft_labels: Data name of the votes to train on (None: the labels).
        """
        super().__init__(
            input_size,
            target,
            loss,
            len(target.classes),
            hidden_size,
            dropout,
            activation,
        )
        self.votes = self.extra_targets(target, {"soft_labels": soft_labels})

    @classmethod
    def extra_targets(cls, target: Target, head_conf: Dict[str, Any]) -> List[Target]:
        name = head_conf.get("soft_labels")
        return [] if name is None else [VoteTarget(str(name), target.classes)]

    def reference(self, batch):
        index = self.target.from_batch(batch)[0]
        if not self.votes:
            return index
        dist = self.votes[0].from_batch(batch)[0].float()
        # No vote for a listed class (or an unlabelled utterance): one-hot.
        hard = torch.nn.functional.one_hot(index.clamp(min=0), dist.size(-1))
        missing = dist.isnan().any(-1, keepdim=True)
        return SoftReference(index, torch.where(missing, hard.to(dist), dist))

    def loss(self, pred, ref):
        return self.loss_fn(pred, ref.dist if self.votes else ref)

    def predict(self, feats, feats_lengths, speech=None, speech_lengths=None):
        return self(feats, feats_lengths).float().softmax(-1)

    def stats(self, pred, ref) -> Dict[str, torch.Tensor]:
        index = ref.index if self.votes else ref
        return {"acc": (pred.argmax(-1) == index).float().mean()}

    def sufficient_stats(self, pred, ref):
        return {"f1": selection.label_counts(pred, ref.index if self.votes else ref)}
