"""SE head, SER heads and SER losses."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from espnet2_merit.merit.loss.ccc import CCCLoss
from espnet2_merit.merit.loss.classification import FocalLoss, WeightedCrossEntropy
from espnet2_merit.merit.se_head.blstm_mask import BLSTMMaskSEHead
from espnet2_merit.merit.ser_head.attentive_pooling import AttentivePoolingClassifier
from espnet2_merit.merit.ser_head.attribute_regressor import AttributeRegressor

FEAT = 6


def _se_head():
    torch.manual_seed(0)
    return BLSTMMaskSEHead(FEAT, feat_shift=320, hidden_size=16)


def _feats(lengths):
    """SSL-rate features for waveforms of ``lengths`` samples: (B, T', FEAT)."""
    frames = [(n - 400) // 320 + 1 for n in lengths]
    torch.manual_seed(3)
    return torch.randn(len(lengths), max(frames), FEAT), torch.tensor(frames)


def test_se_output_lengths_exact_for_odd_lengths():
    head = _se_head()
    lengths = torch.tensor([16001, 12345])
    wav = torch.randn(2, 16001)
    feats, flens = _feats(lengths.tolist())
    out = head(wav, lengths, feats, flens)
    assert out.wav.shape == (2, 16001)
    assert out.wav_lengths.tolist() == [16001, 12345]
    assert out.wav[1, 12345:].abs().sum() == 0 and out.wav[1, :12345].abs().sum() > 0
    assert out.spec_lengths.tolist() == [16001 // 160 + 1, 12345 // 160 + 1]
    assert out.spec.shape == (2, 16001 // 160 + 1, 201)
    assert head(wav, lengths, feats, flens, with_wav=False).wav is None


def test_se_batch_equals_one_by_one():
    head = _se_head().eval()
    torch.manual_seed(4)
    a, b = torch.randn(16001), torch.randn(12345)
    batch = torch.stack([a, F.pad(b, (0, 16001 - 12345), value=3.0)])
    lengths = torch.tensor([16001, 12345])
    feats, flens = _feats(lengths.tolist())
    out = head(batch, lengths, feats, flens)
    for i, x in enumerate((a, b)):
        n = len(x)
        one = head(
            x[None], torch.tensor([n]), feats[i : i + 1, : flens[i]], flens[i : i + 1]
        )
        torch.testing.assert_close(out.wav[i, :n], one.wav[0], atol=1e-5, rtol=1e-4)
        t = int(one.spec_lengths[0])
        torch.testing.assert_close(out.spec[i, :t], one.spec[0], atol=1e-5, rtol=1e-4)


def test_se_loss_ignores_padding_and_trains():
    head = _se_head()
    torch.manual_seed(5)
    lengths = torch.tensor([16000, 9001])
    noisy, clean = torch.randn(2, 16000), torch.randn(2, 16000)
    feats, flens = _feats(lengths.tolist())
    out = head(noisy, lengths, feats, flens, with_wav=False)
    loss = head.loss(out, clean, lengths)
    garbage = clean.clone()
    garbage[1, 9001:] = 50.0
    torch.testing.assert_close(head.loss(out, garbage, lengths), loss)
    loss.backward()
    assert head.blstm.weight_ih_l0.grad.abs().sum() > 0
    assert head.proj.weight.grad[:, 201:].abs().sum() > 0  # the SSL feature is used


def test_se_upsampling_pads_with_own_last_frame():
    head = _se_head()
    feats = torch.arange(8.0).view(1, 8, 1).repeat(2, 1, 1)
    out = head.upsample(feats, torch.tensor([8, 3]), torch.tensor([20, 9]))
    assert out[0, :, 0].tolist()[:17] == [t // 2 for t in range(16)] + [7]
    assert out[1, :9, 0].tolist() == [0, 0, 1, 1, 2, 2, 2, 2, 2]


def test_se_frame_shift_must_match_hop():
    with pytest.raises(ValueError, match="multiple of the STFT hop"):
        BLSTMMaskSEHead(FEAT, feat_shift=300)


@pytest.mark.parametrize("cls", [AttentivePoolingClassifier, AttributeRegressor])
def test_ser_heads_shapes_and_padding(cls):
    torch.manual_seed(0)
    head = cls(FEAT, num_outputs=4, hidden_size=8).eval()
    x = torch.randn(2, 7, FEAT)
    lengths = torch.tensor([7, 4])
    out = head(x, lengths)
    assert out.shape == (2, 4) and head.output_size() == 4
    x2 = x.clone()
    x2[1, 4:] = 1e3
    torch.testing.assert_close(head(x2, lengths), out)
    torch.testing.assert_close(head(x[1:, :4], lengths[1:])[0], out[1])


def test_heads_declare_their_targets():
    assert AttentivePoolingClassifier.target == "emotion"
    assert AttributeRegressor.target == "emotion_attr"


def test_weighted_ce_matches_torch():
    torch.manual_seed(0)
    logits, target = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 0])
    w = [0.5, 1.0, 2.0, 1.5]
    loss = WeightedCrossEntropy(4, w)(logits, target)
    torch.testing.assert_close(
        loss, F.cross_entropy(logits, target, weight=torch.tensor(w))
    )
    with pytest.raises(ValueError, match="3 values for 4 classes"):
        WeightedCrossEntropy(4, [1.0, 2.0, 3.0])


def test_focal_loss():
    torch.manual_seed(0)
    logits, target = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 0])
    w = [0.5, 1.0, 2.0, 1.5]
    ce = WeightedCrossEntropy(4, w)(logits, target)
    torch.testing.assert_close(FocalLoss(4, w, gamma=0.0)(logits, target), ce)
    easy = torch.tensor([[5.0, 0, 0, 0]])
    hard = torch.tensor([[0.5, 0, 0, 0]])
    zero = torch.tensor([0])
    focal, plain = FocalLoss(4), WeightedCrossEntropy(4)
    # Focal loss shrinks the easy example's loss far more than the hard one's.
    assert focal(easy, zero) / plain(easy, zero) < 0.01
    assert focal(hard, zero) / plain(hard, zero) > 0.3


def test_ccc_loss():
    torch.manual_seed(0)
    target = torch.randn(16, 3)
    assert float(CCCLoss(3)(target.clone(), target)) == pytest.approx(0.0, abs=1e-6)
    pred = 0.5 * target + 0.3 * torch.randn(16, 3) + 1.0
    p, t = pred.numpy().astype(np.float64), target.numpy().astype(np.float64)
    ccc = [
        2
        * np.cov(p[:, i], t[:, i], bias=True)[0, 1]
        / (p[:, i].var() + t[:, i].var() + (p[:, i].mean() - t[:, i].mean()) ** 2)
        for i in range(3)
    ]
    assert float(CCCLoss(3)(pred, target)) == pytest.approx(1 - np.mean(ccc), rel=1e-5)
