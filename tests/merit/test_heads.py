"""Every task head: one contract table (shapes, padding never leaks, no gradient
into padding, batch equals one-by-one, gradients reach every parameter), then
what is particular to each head."""

import numpy as np
import pytest
import torch

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import (
    LabelTarget,
    SourceTarget,
    VectorTarget,
    WaveformTarget,
)
from espnet2_merit.tasks.builder import head_choices, loss_choices

D, SHIFT = 6, 320
CLASSES = ["A", "S", "H", "N"]
TARGETS = {
    "label": LabelTarget("emotion", CLASSES),
    "vector": VectorTarget("emotion_attr", ["arousal", "valence", "dominance"]),
    "waveform": WaveformTarget("speech_ref1"),
    "source": SourceTarget("speech_unaugmented"),
}
SMALL = {"blstm_mask": dict(hidden_size=16)}
# Variants of a head in the table: "<head>:<variant>" -> its options.
VARIANTS = {
    "multimodal_pooling:xattn": dict(modality_fusion="xattn", attention_heads=2),
    "multimodal_pooling:text_only": dict(speech=False),
}
HEADS = sorted([*head_choices.classes, *VARIANTS])
# A text head's transcripts here: its (B, T, D) features seen as (B, T, L, D/L)
# token layers with the frames' lengths, so that padding frames are padding
# tokens too and every contract below covers the text input.
TEXT_LAYERS = 2


def _with_text(cls):
    def text(feats, flens):
        b, t, d = feats.shape
        feats = feats.reshape(b, t, TEXT_LAYERS, d // TEXT_LAYERS)
        return dict(text_feats=feats, text_lengths=flens)

    class WithText(cls):
        def forward(self, feats, flens, speech=None, slens=None, **given):
            return super().forward(
                feats, flens, speech, slens, **(given or text(feats, flens))
            )

        def predict(self, feats, flens, speech=None, slens=None, **given):
            return super().predict(
                feats, flens, speech, slens, **(given or text(feats, flens))
            )

    return WithText


def _build(name, loss=None, **conf):
    conf = {**VARIANTS.get(name, {}), **conf}
    name = name.split(":")[0]
    cls = head_choices.classes[name]
    target = TARGETS[cls.target_kind]
    loss = loss_choices.classes[loss or cls.default_loss](target=target)
    torch.manual_seed(0)
    if cls.uses_text:
        cls = _with_text(cls)
        conf = dict(text_layers=TEXT_LAYERS, text_size=D // TEXT_LAYERS, **conf)
    return cls(
        D, SHIFT, target, loss, **{"hidden_size": 8, **SMALL.get(name, {}), **conf}
    )


def _inputs(lengths, requires_grad=False):
    """(B, N) waveforms and their (B, T', D) SSL-rate features."""
    frames = [(n - 400) // SHIFT + 1 for n in lengths]
    torch.manual_seed(3)
    speech = torch.randn(len(lengths), max(lengths))
    feats = torch.randn(len(lengths), max(frames), D, requires_grad=requires_grad)
    for b, (n, t) in enumerate(zip(lengths, frames)):
        speech.data[b, n:] = 0.0
        feats.data[b, t:] = 0.0
    return feats, torch.tensor(frames), speech, torch.tensor(lengths)


def _batch_of_targets(kind, lengths):
    torch.manual_seed(4)
    b = len(lengths)
    if kind == "label":
        return {"emotion": torch.tensor([[i % 4] for i in range(b)])}
    if kind == "vector":
        return {"emotion_attr": torch.randn(b, 3) + 4}
    if kind == "source":  # the input before a speed change: 10% longer
        lengths = [int(n * 1.1) for n in lengths]
    clean = torch.randn(b, max(lengths))
    for i, n in enumerate(lengths):
        clean[i, n:] = 0.0
    name = TARGETS[kind].name
    return {name: clean, f"{name}_lengths": torch.tensor(lengths)}


def _valid(pred, b, n_frames, n_samples):
    """Utterance b's part of a prediction (an SEOutput, a SpecOutput or a
    (B, ...) tensor)."""
    if hasattr(pred, "wav"):
        return pred.wav[b, :n_samples]
    if hasattr(pred, "spec"):
        return pred.spec[b, :n_frames]
    return pred[b]


@pytest.mark.parametrize("name", HEADS)
def test_shapes(name):
    head = _build(name).eval()
    feats, flens, speech, slens = _inputs([16001, 12345])
    pred = head.predict(feats, flens, speech, slens)
    kind = head.target_kind
    if kind == "waveform":
        assert pred.wav.shape == (2, 16001) and pred.wav_lengths.tolist() == [
            16001,
            12345,
        ]
        assert pred.spec_lengths.tolist() == [16001 // 160 + 1, 12345 // 160 + 1]
    elif kind == "label":
        assert pred.shape == (2, 4)
        torch.testing.assert_close(pred.sum(-1), torch.ones(2))
    elif kind == "source":
        assert pred.spec.shape == (2, int(flens[0]), 40)
        assert pred.lengths.tolist() == flens.tolist()
        assert pred.spec[1, int(flens[1]) :].abs().sum() == 0
    else:
        assert pred.shape == (2, 3)


@pytest.mark.parametrize("name", HEADS)
def test_padding_never_leaks(name):
    head = _build(name).eval()
    lengths = [16001, 12345]
    feats, flens, speech, slens = _inputs(lengths)
    pred = head.predict(feats, flens, speech, slens)
    feats2, speech2 = feats.clone(), speech.clone()
    feats2[1, int(flens[1]) :] = 1e3
    speech2[1, lengths[1] :] = 3.0
    pred2 = head.predict(feats2, flens, speech2, slens)
    for b in range(2):
        torch.testing.assert_close(
            _valid(pred2, b, flens[b], lengths[b]),
            _valid(pred, b, flens[b], lengths[b]),
        )
    if head.target_kind == "waveform":
        assert pred.wav[1, lengths[1] :].abs().sum() == 0


@pytest.mark.parametrize("name", HEADS)
def test_batch_equals_one_by_one(name):
    head = _build(name).eval()
    lengths = [16001, 12345]
    feats, flens, speech, slens = _inputs(lengths)
    pred = head.predict(feats, flens, speech, slens)
    for b, n in enumerate(lengths):
        t = int(flens[b])
        one = head.predict(
            feats[b : b + 1, :t],
            flens[b : b + 1],
            speech[b : b + 1, :n],
            slens[b : b + 1],
        )
        torch.testing.assert_close(
            _valid(one, 0, t, n), _valid(pred, b, t, n), atol=1e-5, rtol=1e-4
        )


@pytest.mark.parametrize("name", HEADS)
def test_loss_trains_every_parameter_and_no_gradient_enters_padding(name):
    head = _build(name, dropout=0.0)
    lengths = [16000, 9001]
    feats, flens, speech, slens = _inputs(lengths, requires_grad=True)
    batch = _batch_of_targets(head.target_kind, lengths)
    ref = head.reference(batch)
    loss = head.loss(head(feats, flens, speech, slens), ref)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    for pname, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    assert feats.grad[1, int(flens[1]) :].abs().sum() == 0
    assert feats.grad[:, : int(flens[1])].abs().sum() > 0  # the feature is used


def test_se_reference_padding_does_not_change_the_loss():
    head = _build("blstm_mask")
    lengths = [16000, 9001]
    feats, flens, speech, slens = _inputs(lengths)
    batch = _batch_of_targets("waveform", lengths)
    pred = head(feats, flens, speech, slens)
    loss = head.loss(pred, head.reference(batch))
    batch["speech_ref1"][1, 9001:] = 50.0
    torch.testing.assert_close(head.loss(pred, head.reference(batch)), loss)


def test_se_spectral_loss_skips_the_waveform_in_training():
    feats, flens, speech, slens = _inputs([16000])
    assert _build("blstm_mask")(feats, flens, speech, slens).wav is None
    waveform_loss = _build("blstm_mask", loss="si_snr")
    assert waveform_loss(feats, flens, speech, slens).wav is not None


def test_se_upsampling_pads_with_own_last_frame():
    head = _build("blstm_mask")
    feats = torch.arange(8.0).view(1, 8, 1).repeat(2, 1, 1)
    out = head.upsample(feats, torch.tensor([8, 3]), torch.tensor([20, 9]))
    assert out[0, :, 0].tolist()[:17] == [t // 2 for t in range(16)] + [7]
    assert out[1, :9, 0].tolist() == [0, 0, 1, 1, 2, 2, 2, 2, 2]


def test_se_input_gain_works_on_the_scaled_waveform_and_undoes_it():
    # A head with gain g on x is the gain-1 head on g * x, its waveform divided by g.
    feats, flens, speech, slens = _inputs([16000, 9001])
    batch = _batch_of_targets("waveform", [16000, 9001])
    gained, plain = _build("blstm_mask", input_gain=17.0), _build("blstm_mask")
    out = gained.predict(feats, flens, 0.05 * speech, slens)
    ref = plain.predict(feats, flens, 17.0 * 0.05 * speech, slens)
    torch.testing.assert_close(out.spec, ref.spec)
    torch.testing.assert_close(out.wav, ref.wav / 17.0)
    scaled = dict(batch, speech_ref1=17.0 * batch["speech_ref1"])
    torch.testing.assert_close(
        gained.reference(batch).spec, plain.reference(scaled).spec
    )
    torch.testing.assert_close(gained.reference(batch).wav, batch["speech_ref1"])
    with pytest.raises(ValueError, match="input_gain=0.0: must be > 0"):
        _build("blstm_mask", input_gain=0.0)


def test_se_frame_shift_must_match_hop():
    target = TARGETS["waveform"]
    loss = loss_choices.classes["log1p_l1"](target=target)
    with pytest.raises(ValueError, match="multiple of the STFT hop"):
        head_choices.classes["blstm_mask"](D, 300, target, loss)


def test_a_head_refuses_a_target_or_loss_of_another_kind():
    cls = head_choices.classes["attentive_pooling"]
    label = TARGETS["label"]
    with pytest.raises(ValueError, match="label loss|vector targets"):
        cls(D, SHIFT, label, loss_choices.classes["ccc"](target=TARGETS["vector"]))


def test_classifier_statistics():
    head = _build("attentive_pooling")
    logits = torch.tensor([[5.0, 0, 0, 0], [0, 5.0, 0, 0], [0, 0, 0, 5.0]])
    ref = torch.tensor([0, 1, 2])
    assert float(head.stats(logits, ref)["acc"]) == pytest.approx(2 / 3)
    counts = head.sufficient_stats(logits, ref)["f1"]
    assert float(counts["tp0"]) == pytest.approx(1 / 3)
    assert float(counts["hyp3"]) == pytest.approx(1 / 3)
    assert float(counts["ref3"]) == 0.0


def test_label_target_parse_render_and_errors():
    target = TARGETS["label"]
    assert target.parse("u1", "H").tolist() == [2]
    rendered = target.render(torch.tensor([0.1, 0.2, 0.6, 0.1]).numpy())
    assert rendered["emotion"] == "H"
    assert rendered["emotion_posteriors"].split()[2] == "0.600000"
    with pytest.raises(ValueError, match="utterance 'u7': emotion label 'X'"):
        target.parse("u7", "X")
    with pytest.raises(ValueError, match="repeated"):
        LabelTarget("emotion", ["A", "S", "A"])
    # "-": an unlabelled utterance (-1, as padding), never a class.
    assert target.parse("u1", "-").tolist() == [-1]
    assert np.isnan(TARGETS["vector"].parse("u1", " - ")).all()
    with pytest.raises(ValueError, match="'-' cannot be a class"):
        LabelTarget("emotion", ["A", "-"])
    batch = {"emotion": torch.tensor([[2], [-1]]), "emotion_attr": torch.ones(2, 3)}
    batch["emotion_attr"][1, 0] = float("nan")
    assert target.present(batch).tolist() == [True, False]
    assert TARGETS["vector"].present(batch).tolist() == [True, False]


@pytest.mark.parametrize("text", ["4.5 2.0", "a b c", "", "1 nan 2"])
def test_vector_target_bad_values(text):
    with pytest.raises(ValueError, match="3 finite numbers"):
        TARGETS["vector"].parse("u1", text)


def test_waveform_target_checks_channels_and_samples():
    with pytest.raises(ValueError, match="mono"):
        TARGETS["waveform"].parse("u1", torch.zeros(10, 2).numpy())
    bad = torch.zeros(10)
    bad[3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        TARGETS["waveform"].parse("u1", bad.numpy())


@pytest.mark.parametrize("name", ["attentive_pooling", "attribute_regressor"])
def test_pooled_heads_take_the_activation_by_name(name):
    from espnet2_merit.merit.heads.attentive_pooling import ACTIVATIONS

    feats, feats_lengths, _, _ = _inputs([2000, 1500])
    outs = {}
    for act, cls in ACTIVATIONS.items():
        head = _build(name, activation=act).eval()
        assert [type(m) for m in head.mlp].count(cls) == 1
        outs[act] = head(feats, feats_lengths)
    assert not torch.allclose(outs["relu"], outs["mish"])
    assert not torch.allclose(outs["mish"], outs["gelu"])
    with pytest.raises(ValueError, match="head_conf.activation='tanh'"):
        _build(name, activation="tanh")


def test_vote_target_reads_votes_as_a_distribution_over_the_classes():
    from espnet2_merit.merit.heads.targets import VoteTarget

    votes = VoteTarget("emotion_votes", ["A", "S", "H", "N"])
    np.testing.assert_allclose(votes.parse("u", "A:1 N:3 O:1"), [0.25, 0, 0, 0.75])
    # Only votes outside the classes, or none: NaN (the head uses the label).
    assert np.isnan(votes.parse("u", "O:2 U:1")).all()
    assert np.isnan(votes.parse("u", "-")).all()
    for bad in ("A1", "A:x", "A:-1", ":2"):
        with pytest.raises(MeritInputError, match="utterance 'u': emotion_votes"):
            votes.parse("u", bad)


def test_soft_labels_train_on_votes_and_score_the_label():
    from espnet2_merit.merit.heads.attentive_pooling import AttentivePoolingClassifier
    from espnet2_merit.merit.heads.targets import LabelTarget
    from espnet2_merit.merit.loss.classification import WeightedCrossEntropy

    label = LabelTarget("emotion", ["A", "S", "H", "N"])
    head = AttentivePoolingClassifier(
        8, 320, label, WeightedCrossEntropy(label), 16, soft_labels="emotion_votes"
    )
    (votes,) = head.extra_targets(label, {"soft_labels": "emotion_votes"})
    assert votes.name == "emotion_votes" and votes.classes == label.classes
    batch = {
        "emotion": torch.tensor([[0], [3]]),
        "emotion_votes": torch.tensor([[0.5, 0, 0, 0.5], [np.nan] * 4]),
    }
    ref = head.reference(batch)
    assert ref.index.tolist() == [0, 3]
    # The second has no votes: its one-hot label.
    assert ref.dist.tolist() == [[0.5, 0, 0, 0.5], [0, 0, 0, 1]]
    logits = torch.tensor([[2.0, 0, 0, 0], [0, 0, 0, 2.0]])
    expected = WeightedCrossEntropy(label)(logits, ref.dist)
    torch.testing.assert_close(head.loss(logits, ref), expected)
    assert float(head.stats(logits, ref)["acc"]) == 1.0


def test_reconstruction_aligns_the_source_and_ignores_its_padding():
    from espnet2_merit.merit.heads.reconstruction import SpecOutput, aligned

    head = _build("reconstruction", dropout=0.0)
    lengths = [16000, 9001]
    feats, flens, speech, slens = _inputs(lengths)
    batch = _batch_of_targets("source", lengths)
    pred = head(feats, flens, speech, slens)
    loss = head.loss(pred, head.reference(batch))
    batch["speech_unaugmented"][1, int(batch["speech_unaugmented_lengths"][1]) :] = 9.0
    torch.testing.assert_close(head.loss(pred, head.reference(batch)), loss)
    # Alignment: linear in time, each utterance to its own frame count.
    ref = SpecOutput(
        torch.arange(6.0).view(1, 6, 1).repeat(2, 1, 2), torch.tensor([6, 3])
    )
    out = aligned(ref, torch.tensor([3, 6]), 6)
    assert out.spec[0, :3, 0].tolist() == [0.5, 2.5, 4.5] and out.lengths.tolist() == [
        3,
        6,
    ]
    assert out.spec[0, 3:].abs().sum() == 0
    torch.testing.assert_close(
        out.spec[1, :, 0], torch.tensor([0, 0.25, 0.75, 1.25, 1.75, 2])
    )
    # A perfect reconstruction has zero loss.
    target = aligned(head.reference(batch), pred.lengths, pred.spec.size(1))
    assert float(head.loss_fn(target, target)) == 0.0
