import torch

from espnet2_merit.layers.stft import Stft


def test_roundtrip_exact_length():
    stft = Stft()
    torch.manual_seed(0)
    wav = torch.randn(2, 8001)
    lengths = torch.tensor([8001, 4567])
    wav[1, 4567:] = 0
    spec, frames = stft(wav, lengths)
    assert frames.tolist() == [8001 // 160 + 1, 4567 // 160 + 1]
    back = stft.inverse(spec, lengths, 8001)
    torch.testing.assert_close(back, wav, atol=1e-4, rtol=1e-4)


def test_batch_equals_single():
    stft = Stft()
    torch.manual_seed(1)
    a, b = torch.randn(5000), torch.randn(3333)
    batch = torch.stack([a, torch.cat([b, torch.ones(5000 - 3333)])])
    spec, frames = stft(batch, torch.tensor([5000, 3333]))
    single, _ = stft(b[None], torch.tensor([3333]))
    torch.testing.assert_close(spec[1, : frames[1]], single[0])
    assert spec[1, frames[1] :].abs().sum() == 0
