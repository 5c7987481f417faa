"""Waveform normalisation: ESPnet's results on valid samples, zero padding, and a
padding mask whose memory is linear in the input length."""

import numpy as np
import pytest
import torch
from espnet2.layers.global_mvn import GlobalMVN
from espnet2.layers.utterance_mvn import UtteranceMVN

from espnet2_merit.layers.normalize import WaveGlobalMVN, WaveUtteranceMVN


@pytest.fixture
def stats(tmp_path):
    path = tmp_path / "feats_stats.npz"
    np.savez(
        path, count=np.array(100), sum=np.full(1, 5.0), sum_square=np.full(1, 40.0)
    )
    return str(path)


def _batch():
    torch.manual_seed(0)
    x = torch.randn(2, 50, 1) * 3 + 1
    lens = torch.tensor([50, 31])
    x[1, 31:] = 0
    return x, lens


def test_global_mvn_matches_espnet_and_keeps_padding_zero(stats):
    x, lens = _batch()
    ours, _ = WaveGlobalMVN(stats)(x.clone(), lens)
    ref, _ = GlobalMVN(stats)(x.clone(), lens)
    torch.testing.assert_close(ours, ref)
    assert (ours[1, 31:] == 0).all()


@pytest.mark.parametrize("norm_vars", [False, True])
def test_utterance_mvn_matches_one_by_one(norm_vars):
    x, lens = _batch()
    norm = WaveUtteranceMVN(norm_vars=norm_vars)
    batched, _ = norm(x, lens)
    for i, n in enumerate(lens.tolist()):
        single, _ = norm(x[i : i + 1, :n], lens[i : i + 1])
        torch.testing.assert_close(batched[i, :n], single[0])
        ref, _ = UtteranceMVN(norm_vars=norm_vars)(x[i : i + 1, :n].clone())
        torch.testing.assert_close(single, ref)
    assert (batched[1, 31:] == 0).all()  # ESPnet leaves -mean in the padding


def test_long_waveforms_need_no_quadratic_mask(stats):
    # 10 minutes of 16 kHz audio: ESPnet's traceable mask would be 9.2e13 bytes.
    x = torch.randn(1, 16000 * 600, 1)
    lens = torch.tensor([x.size(1)])
    for norm in (WaveGlobalMVN(stats), WaveUtteranceMVN(norm_vars=True)):
        out, _ = norm(x, lens)
        assert out.shape == x.shape and torch.isfinite(out).all()
