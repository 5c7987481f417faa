"""Speech + text emotion classifier: the attentive-pooling classifier with the
transcript's text-encoder features fused in (Interspeech 2025 challenge systems,
arXiv 2508.07282: WavLM and RoBERTa features fused)."""

from typing import Optional

import torch
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.abs_task_head import AbsTaskHead
from espnet2_merit.merit.heads.attentive_pooling import (
    ACTIVATIONS,
    AttentivePoolingClassifier,
    AttentiveStatsPooling,
)
from espnet2_merit.merit.heads.targets import LabelTarget
from espnet2_merit.merit.loss.abs_loss import AbsLoss
from espnet2_merit.utils.masks import valid_mask

MODALITY_FUSIONS = ("late", "xattn")
TEXT_POOLINGS = ("mean", "weighted_mean")


class MultimodalPoolingClassifier(AttentivePoolingClassifier):
    """Class logits of a label target from the task's fused speech features and
    the text frontend's (B, S, L, Dt) token layer stack.

    - ``modality_fusion: late`` (the paper's): [attentive statistics pooling of
      the speech frames (2D), masked mean of the text tokens (Dt)] -> the MLP;
      with ``speech: false`` the MLP sees the text embedding alone (text-only
      SER).
    - ``modality_fusion: xattn``: each speech frame attends to the text tokens
      (multi-head attention, key padding mask from the token lengths, the text
      projected to D), added to the frame (residual, LayerNorm), then the
      attentive statistics pooling -> the MLP.

    Text layers: ``text_pooling: weighted_mean`` learns softmax weights over the
    L layers (as the SSL weighted sum), ``mean`` takes the last layer. Padding
    tokens never enter a mean, an attention or a gradient. Soft labels, loss,
    statistics and outputs are the attentive-pooling classifier's.
    """

    uses_text = True

    @typechecked
    def __init__(
        self,
        input_size: int,
        frame_shift: int,
        target: LabelTarget,
        loss: AbsLoss,
        text_layers: int,
        text_size: int,
        modality_fusion: str = "late",
        speech: bool = True,
        text_pooling: str = "weighted_mean",
        attention_heads: int = 4,
        hidden_size: int = 1024,
        dropout: float = 0.5,
        activation: str = "relu",
        soft_labels: Optional[str] = None,
    ):
        """Build the head.

        Args:
            input_size: Size D of the task's fused speech feature.
            frame_shift: Not used (utterance-level output).
            target: The label target; one output per class.
            loss: A label loss (``ce``, ``focal``).
            text_layers: L of the text frontend (set by the task).
            text_size: Dt of the text frontend (set by the task).
            modality_fusion: ``late`` or ``xattn`` (see the class).
            speech: Use the speech features (``false``: text only; ``late``).
            text_pooling: ``weighted_mean`` or ``mean`` (last layer).
            attention_heads: Heads of the cross-attention (``xattn``; divides D).
            hidden_size: Size of the MLP's hidden layer.
            dropout: Dropout before each linear layer (and in the attention).
            activation: The hidden layer's: ``relu``, ``mish`` or ``gelu``.
            soft_labels: Data name of the votes to train on (None: the labels).
        """
        # The parent's pooling and MLP take a speech-only input: this head builds
        # its own, and reuses the parent's targets, loss and statistics.
        AbsTaskHead.__init__(self, target, loss)
        where = "head_conf"
        if modality_fusion not in MODALITY_FUSIONS:
            raise MeritInputError(
                f"{where}.modality_fusion={modality_fusion!r}: expected one of "
                f"{list(MODALITY_FUSIONS)}"
            )
        if text_pooling not in TEXT_POOLINGS:
            raise MeritInputError(
                f"{where}.text_pooling={text_pooling!r}: expected one of "
                f"{list(TEXT_POOLINGS)}"
            )
        if activation not in ACTIVATIONS:
            raise MeritInputError(
                f"{where}.activation={activation!r}: expected one of "
                f"{sorted(ACTIVATIONS)}"
            )
        if modality_fusion == "xattn" and not speech:
            raise MeritInputError(
                f"{where}: modality_fusion: xattn attends from speech frames; "
                "text-only SER is modality_fusion: late with speech: false"
            )
        if modality_fusion == "xattn" and input_size % attention_heads:
            raise MeritInputError(
                f"{where}.attention_heads={attention_heads} does not divide the "
                f"speech feature size {input_size}"
            )
        self.modality_fusion, self.speech, self.text_pooling = (
            modality_fusion, speech, text_pooling,
        )  # fmt: skip
        self.num_outputs = len(target.classes)
        if text_pooling == "weighted_mean":
            self.layer_weights = torch.nn.Parameter(torch.zeros(text_layers))
        if modality_fusion == "xattn":
            self.text_proj = torch.nn.Linear(text_size, input_size)
            self.cross_attention = torch.nn.MultiheadAttention(
                input_size, attention_heads, dropout=dropout, batch_first=True
            )
            self.cross_norm = torch.nn.LayerNorm(input_size)
            mlp_in = 2 * input_size
        else:
            mlp_in = (2 * input_size if speech else 0) + text_size
        if speech:
            self.pooling = AttentiveStatsPooling(input_size)
        self.mlp = torch.nn.Sequential(
            torch.nn.Dropout(dropout),
            torch.nn.Linear(mlp_in, hidden_size),
            torch.nn.LayerNorm(hidden_size),
            ACTIVATIONS[activation](),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden_size, self.num_outputs),
        )
        self.votes = self.extra_targets(target, {"soft_labels": soft_labels})

    def _text_tokens(self, text_feats: torch.Tensor) -> torch.Tensor:
        """(B, S, L, Dt) -> (B, S, Dt): the layer-weighted sum or the last layer."""
        if self.text_pooling == "mean":
            return text_feats[:, :, -1]
        w = self.layer_weights.softmax(0).to(text_feats.dtype)
        return (text_feats * w[None, None, :, None]).sum(2)

    def forward(
        self,
        feats,
        feats_lengths,
        speech=None,
        speech_lengths=None,
        text_feats: Optional[torch.Tensor] = None,
        text_lengths: Optional[torch.Tensor] = None,
    ):
        """(B, T, D) speech features and (B, S, L, Dt) text features with their
        lengths -> (B, C) logits (the input waveform is not used)."""
        if text_feats is None or text_lengths is None:
            raise MeritInputError(
                "multimodal_pooling needs the transcripts: give the data 'text' "
                "(<dir>/text,text,text) and a text_frontend"
            )
        tokens = self._text_tokens(text_feats)
        mask = valid_mask(text_lengths, tokens.size(1))  # (B, S)
        if self.modality_fusion == "xattn":
            keys = self.text_proj(tokens)
            attended, _ = self.cross_attention(
                feats, keys, keys, key_padding_mask=~mask, need_weights=False
            )
            fused = self.cross_norm(feats + attended)
            return self.mlp(self.pooling(fused, feats_lengths))
        m = mask[..., None].to(tokens.dtype)
        text = (tokens * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, Dt)
        if self.speech:
            text = torch.cat([self.pooling(feats, feats_lengths), text], dim=-1)
        return self.mlp(text)

    def predict(
        self,
        feats,
        feats_lengths,
        speech=None,
        speech_lengths=None,
        text_feats=None,
        text_lengths=None,
    ):
        return (
            self(feats, feats_lengths, text_feats=text_feats, text_lengths=text_lengths)
            .float()
            .softmax(-1)
        )
