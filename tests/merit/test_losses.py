"""Every loss: one contract table (a finite scalar, lowest for a perfect
prediction, gradients to the prediction, padding never enters), then each
loss's own numbers."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from espnet2_merit.layers.stft import Stft
from espnet2_merit.merit.heads.abs_task_head import SEOutput
from espnet2_merit.merit.heads.reconstruction import SpecOutput
from espnet2_merit.merit.heads.targets import (
    LabelTarget,
    SourceTarget,
    VectorTarget,
    WaveformTarget,
)
from espnet2_merit.merit.loss.ccc import CCCLoss
from espnet2_merit.merit.loss.classification import FocalLoss, WeightedCrossEntropy
from espnet2_merit.tasks.builder import loss_choices

TARGETS = {
    "label": LabelTarget("emotion", ["A", "S", "H", "N"]),
    "vector": VectorTarget("emotion_attr", ["arousal", "valence", "dominance"]),
    "waveform": WaveformTarget("speech_ref1"),
    "source": SourceTarget("speech_unaugmented"),
}
LOSSES = sorted(loss_choices.classes)
STFT = Stft()


def _speech(wav, lengths):
    spec, frames = STFT(wav, lengths)
    return SEOutput(wav, lengths, torch.log1p(spec.abs()), frames)


def _pair(kind, perfect=False):
    """(prediction, reference) of a loss kind; the prediction requires grad."""
    torch.manual_seed(0)
    if kind == "label":
        ref = torch.tensor([0, 1, 2, 3, 0, 2])
        logits = 20.0 * F.one_hot(ref, 4).float() if perfect else torch.randn(6, 4)
        return logits.requires_grad_(), ref
    if kind == "vector":
        ref = torch.randn(8, 3)
        pred = ref.clone() if perfect else ref + 0.7 * torch.randn(8, 3)
        return pred.requires_grad_(), ref
    if kind == "source":
        lengths = torch.tensor([7, 4])
        ref = torch.randn(2, 7, 5) * (torch.arange(7) < lengths[:, None])[..., None]
        pred = ref.clone() if perfect else ref + 0.5 * torch.randn(2, 7, 5)
        return SpecOutput(pred.requires_grad_(), lengths), SpecOutput(ref, lengths)
    lengths = torch.tensor([4000, 2501])
    clean = torch.randn(2, 4000)
    clean[1, 2501:] = 0.0
    est = clean.clone() if perfect else clean + 0.5 * torch.randn(2, 4000)
    est[1, 2501:] = 0.0
    est.requires_grad_()
    ref = _speech(clean, lengths)
    pred = _speech(est, lengths)
    return pred, ref


def _leaf(pred):
    if isinstance(pred, SEOutput):
        return pred.wav
    return pred.spec if isinstance(pred, SpecOutput) else pred


@pytest.mark.parametrize("name", LOSSES)
def test_scalar_lowest_when_perfect_and_differentiable(name):
    cls = loss_choices.classes[name]
    loss = cls(target=TARGETS[cls.kind])
    pred, ref = _pair(cls.kind)
    value = loss(pred, ref)
    assert value.dim() == 0 and torch.isfinite(value)
    value.backward()
    assert _leaf(pred).grad.abs().sum() > 0
    perfect, ref = _pair(cls.kind, perfect=True)
    assert float(loss(perfect, ref)) < float(value)


@pytest.mark.parametrize(
    "name", [n for n in LOSSES if loss_choices.classes[n].kind == "waveform"]
)
def test_padding_never_enters(name):
    loss = loss_choices.classes[name](target=TARGETS["waveform"])
    pred, ref = _pair("waveform")
    value = loss(pred, ref)
    dirty = ref.wav.clone()
    dirty[1, 2501:] = 30.0
    dirty_spec = ref.spec.clone()
    dirty_spec[1, int(ref.spec_lengths[1]) :] = 30.0
    ref2 = SEOutput(dirty, ref.wav_lengths, dirty_spec, ref.spec_lengths)
    torch.testing.assert_close(loss(pred, ref2), value)
    value.backward()
    assert pred.wav.grad[1, 2501:].abs().sum() == 0


@pytest.mark.parametrize(
    "name", [n for n in LOSSES if loss_choices.classes[n].kind == "waveform"]
)
def test_length_mismatch_is_an_error(name):
    loss = loss_choices.classes[name](target=TARGETS["waveform"])
    pred, ref = _pair("waveform")
    shorter = _speech(ref.wav[:, :3000], torch.tensor([3000, 2501]))
    with pytest.raises(ValueError, match="differ in length"):
        loss(pred, shorter)


def test_weighted_ce_matches_torch():
    torch.manual_seed(0)
    logits, target = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 0])
    w = [0.5, 1.0, 2.0, 1.5]
    loss = WeightedCrossEntropy(TARGETS["label"], w)(logits, target)
    torch.testing.assert_close(
        loss, F.cross_entropy(logits, target, weight=torch.tensor(w))
    )
    with pytest.raises(ValueError, match="3 values for 4 classes"):
        WeightedCrossEntropy(TARGETS["label"], [1.0, 2.0, 3.0])


def test_focal_loss():
    torch.manual_seed(0)
    logits, target = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 0])
    w = [0.5, 1.0, 2.0, 1.5]
    label = TARGETS["label"]
    ce = WeightedCrossEntropy(label, w)(logits, target)
    torch.testing.assert_close(FocalLoss(label, w, gamma=0.0)(logits, target), ce)
    easy = torch.tensor([[5.0, 0, 0, 0]])
    hard = torch.tensor([[0.5, 0, 0, 0]])
    zero = torch.tensor([0])
    focal, plain = FocalLoss(label), WeightedCrossEntropy(label)
    # Focal loss shrinks the easy example's loss far more than the hard one's.
    assert focal(easy, zero) / plain(easy, zero) < 0.01
    assert focal(hard, zero) / plain(hard, zero) > 0.3


def test_ccc_loss():
    torch.manual_seed(0)
    target = torch.randn(16, 3)
    loss = CCCLoss(TARGETS["vector"])
    assert float(loss(target.clone(), target)) == pytest.approx(0.0, abs=1e-6)
    pred = 0.5 * target + 0.3 * torch.randn(16, 3) + 1.0
    p, t = pred.numpy().astype(np.float64), target.numpy().astype(np.float64)
    ccc = [
        2
        * np.cov(p[:, i], t[:, i], bias=True)[0, 1]
        / (p[:, i].var() + t[:, i].var() + (p[:, i].mean() - t[:, i].mean()) ** 2)
        for i in range(3)
    ]
    assert float(loss(pred, target)) == pytest.approx(1 - np.mean(ccc), rel=1e-5)


def test_si_snr_value():
    loss = loss_choices.classes["si_snr"](target=TARGETS["waveform"])
    torch.manual_seed(1)
    clean = torch.randn(1, 8000)
    noise = torch.randn(1, 8000)
    noise = noise - noise.mean()
    clean = clean - clean.mean()
    # Noise orthogonal to the clean signal: SI-SNR = 10 log10(|s|^2 / |n|^2).
    noise = noise - (noise @ clean.T) / (clean @ clean.T) * clean
    est = clean + 0.1 * noise
    lengths = torch.tensor([8000])
    expected = 10 * torch.log10(clean.pow(2).sum() / (0.1 * noise).pow(2).sum())
    value = loss(_speech(est, lengths), _speech(clean, lengths))
    assert float(value) == pytest.approx(-float(expected), rel=1e-4)


@pytest.mark.parametrize("cls", [WeightedCrossEntropy, FocalLoss])
def test_one_hot_distribution_is_the_hard_loss(cls):
    torch.manual_seed(0)
    logits, target = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 0])
    loss = cls(TARGETS["label"], [0.5, 1.0, 2.0, 1.5])
    one_hot = F.one_hot(target, 4).float()
    torch.testing.assert_close(loss(logits, one_hot), loss(logits, target))


def test_soft_cross_entropy_value_and_gradient():
    logits = torch.tensor([[1.0, 0.0, -1.0, 0.5]], requires_grad=True)
    q = torch.tensor([[0.6, 0.2, 0.0, 0.2]])
    loss = WeightedCrossEntropy(TARGETS["label"])(logits, q)
    expected = -(q * F.log_softmax(logits, -1)).sum()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    # d/dz of soft CE is softmax - q: the votes, not the majority class, pull.
    torch.testing.assert_close(logits.grad, (logits.softmax(-1) - q).detach())


def test_spectral_l1_leaves_padding_out():
    loss = loss_choices.classes["spec_l1"](target=TARGETS["source"])
    pred, ref = _pair("source")
    value = loss(pred, ref)
    dirty = ref.spec.clone()
    dirty[1, 4:] = 30.0
    torch.testing.assert_close(loss(pred, SpecOutput(dirty, ref.lengths)), value)
    expected = (pred.spec - ref.spec).abs()[0].mean() * 7 / 11 + (
        pred.spec - ref.spec
    ).abs()[1, :4].mean() * 4 / 11
    torch.testing.assert_close(value, expected)
    value.backward()
    assert pred.spec.grad[1, 4:].abs().sum() == 0
