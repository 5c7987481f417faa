"""Arousal / valence / dominance regression with the classifier's architecture."""

import torch
from typeguard import typechecked

from espnet2_merit.merit.heads.attentive_pooling import PooledHead
from espnet2_merit.merit.heads.targets import VectorTarget
from espnet2_merit.merit.loss.abs_loss import AbsLoss
from espnet2_merit.scoring import selection


class AttributeRegressor(PooledHead):
    """Same pooling and MLP, one output per value of a vector target (e.g.
    ``emotion_attr``: arousal valence dominance, named by ``--attribute_list``)."""

    target_kind = "vector"
    default_target = "emotion_attr"
    default_loss = "ccc"

    @typechecked
    def __init__(
        self,
        input_size: int,
        frame_shift: int,
        target: VectorTarget,
        loss: AbsLoss,
        hidden_size: int = 1024,
        dropout: float = 0.5,
        activation: str = "relu",
    ):
        """Build the head (arguments as ``AttentivePoolingClassifier``'s)."""
        super().__init__(
            input_size,
            target,
            loss,
            len(target.names),
            hidden_size,
            dropout,
            activation,
        )

    def predict(self, feats, feats_lengths, speech=None, speech_lengths=None):
        return self(feats, feats_lengths).float()

    def reference(self, batch) -> torch.Tensor:
        return self.target.from_batch(batch)[0].float()

    def sufficient_stats(self, pred, ref):
        return {"ccc": selection.moments(pred, ref)}
