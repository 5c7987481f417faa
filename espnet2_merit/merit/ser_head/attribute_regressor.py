"""Arousal / valence / dominance regression with the classifier's architecture."""

from espnet2_merit.merit.ser_head.attentive_pooling import AttentivePoolingClassifier


class AttributeRegressor(AttentivePoolingClassifier):
    """Same pooling and MLP, trained on ``emotion_attr`` (one output per attribute,
    e.g. arousal valence dominance); the task sets ``num_outputs`` from the
    attribute list and pairs it with a regression loss (``ser_loss: ccc``)."""

    target = "emotion_attr"
