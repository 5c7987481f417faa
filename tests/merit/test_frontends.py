import pytest
import torch

from espnet2_merit.merit.frontend.fbank import FbankFrontend
from espnet2_merit.merit.frontend.s3prl import S3prlMultiLayerFrontend


@pytest.fixture(scope="module")
def s3prl_frontend(tiny_wavlm):
    return S3prlMultiLayerFrontend(upstream="wavlm_local", path_or_url=str(tiny_wavlm))


def _pair():
    torch.manual_seed(0)
    a, b = torch.randn(16000), torch.randn(11111)
    batch = torch.stack([a, torch.cat([b, 5 * torch.randn(16000 - 11111)])])
    return (a, b), batch, torch.tensor([16000, 11111])


@pytest.mark.parametrize("exact", [True, False])
def test_s3prl_stack_shape(s3prl_frontend, exact):
    fe = s3prl_frontend
    fe.exact_padding = exact
    assert (fe.num_layers(), fe.output_size(), fe.frame_shift()) == (3, 64, 320)
    assert fe.min_samples() == 400  # WavLM conv receptive field
    _, batch, lengths = _pair()
    feats, flens = fe(batch, lengths)
    # Frames the convolutional front produces for the valid samples only.
    assert flens.tolist() == [(16000 - 400) // 320 + 1, (11111 - 400) // 320 + 1]
    assert feats.shape == (2, int(flens.max()), 3, 64)


def test_s3prl_batch_equals_one_by_one(s3prl_frontend):
    fe = s3prl_frontend.eval()
    fe.exact_padding = True
    singles, batch, lengths = _pair()
    with torch.no_grad():
        feats, flens = fe(batch, lengths)
        for i, wav in enumerate(singles):
            one, olens = fe(wav[None], torch.tensor([len(wav)]))
            assert int(olens[0]) == int(flens[i])
            torch.testing.assert_close(
                feats[i, : flens[i]], one[0], atol=1e-4, rtol=1e-4
            )


def test_s3prl_unknown_upstream_is_clear():
    with pytest.raises(ValueError, match="not an s3prl upstream"):
        S3prlMultiLayerFrontend(upstream="wavlm_hyper")


def test_s3prl_layer_selection(tiny_wavlm):
    fe = S3prlMultiLayerFrontend(
        upstream="wavlm_local", path_or_url=str(tiny_wavlm), layers=[0, 2]
    )
    feats, _ = fe(torch.randn(1, 8000), torch.tensor([8000]))
    assert fe.num_layers() == 2 and feats.shape[2] == 2


def test_fbank_shapes_and_batch_invariance():
    fe = FbankFrontend(n_mels=40)
    singles, batch, lengths = _pair()
    feats, flens = fe(batch, lengths)
    assert (fe.num_layers(), fe.output_size(), fe.frame_shift()) == (1, 40, 160)
    assert flens.tolist() == [16000 // 160 + 1, 11111 // 160 + 1]
    assert feats.shape == (2, int(flens.max()), 1, 40)
    one, _ = fe(singles[1][None], torch.tensor([11111]))
    torch.testing.assert_close(feats[1, : flens[1]], one[0])
    assert feats[1, flens[1] :].abs().sum() == 0
