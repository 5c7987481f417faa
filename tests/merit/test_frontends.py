"""Every multi-layer frontend: one contract table (declared sizes, exact frame
counts, padding never leaks, batch equals one-by-one, gradients), then what is
particular to each."""

import pytest
import torch

from espnet2_merit.merit.frontend.fbank import FbankFrontend
from espnet2_merit.merit.frontend.s3prl import S3prlMultiLayerFrontend

# name -> (builder(tiny_wavlm), (layers, size, frame shift), frames of n samples)
FRONTENDS = {
    "s3prl_exact": (
        lambda ckpt: S3prlMultiLayerFrontend(
            upstream="wavlm_local", path_or_url=str(ckpt)
        ),
        (3, 64, 320),
        lambda n: (n - 400) // 320 + 1,
    ),
    "fbank": (
        lambda ckpt: FbankFrontend(n_mels=40),
        (1, 40, 160),
        lambda n: n // 160 + 1,
    ),
}


@pytest.fixture(params=list(FRONTENDS))
def frontend(request, tiny_wavlm):
    build, sizes, frames = FRONTENDS[request.param]
    torch.manual_seed(0)
    return build(tiny_wavlm).eval(), sizes, frames


def _pair():
    torch.manual_seed(0)
    a, b = torch.randn(16000), torch.randn(11111)
    batch = torch.stack([a, torch.cat([b, 5 * torch.randn(16000 - 11111)])])
    return (a, b), batch, torch.tensor([16000, 11111])


def test_sizes_and_frame_counts(frontend):
    fe, sizes, frames = frontend
    assert (fe.num_layers(), fe.output_size(), fe.frame_shift()) == sizes
    _, batch, lengths = _pair()
    feats, flens = fe(batch, lengths)
    assert flens.tolist() == [frames(16000), frames(11111)]
    assert feats.shape == (2, frames(16000), sizes[0], sizes[1])
    assert fe.min_samples() >= fe.frame_shift()


def test_batch_equals_one_by_one_and_padding_never_leaks(frontend):
    fe, _, _ = frontend
    singles, batch, lengths = _pair()
    with torch.no_grad():
        feats, flens = fe(batch, lengths)
        for i, wav in enumerate(singles):
            one, olens = fe(wav[None], torch.tensor([len(wav)]))
            assert int(olens[0]) == int(flens[i])
            torch.testing.assert_close(
                feats[i, : flens[i]], one[0], atol=1e-4, rtol=1e-4
            )
    assert feats[1, int(flens[1]) :].abs().sum() == 0


def test_gradients_reach_the_trainable_parts_but_not_the_padding(frontend):
    fe, _, _ = frontend
    _, batch, lengths = _pair()
    batch = batch.clone().requires_grad_()
    feats, flens = fe(batch, lengths)
    feats[1, : int(flens[1])].sum().backward()
    trained = [p for p in fe.parameters() if p.grad is not None]
    # s3prl: the transformer learns (the CNN is frozen, so the input gets none);
    # fbank has no parameters: the gradient reaches the input's valid samples.
    assert any(p.grad.abs().sum() > 0 for p in trained) or (
        batch.grad[1, :11111].abs().sum() > 0
    )
    if batch.grad is not None:
        assert batch.grad[1, 11111:].abs().sum() == 0


def test_freeze_unreachable_leaves_exactly_the_parameters_that_learn(frontend):
    fe, _, _ = frontend
    fe.train()
    state = torch.get_rng_state()
    fe.freeze_unreachable()
    assert torch.equal(torch.get_rng_state(), state)  # no dropout drawn
    assert all(m.training for m in fe.modules())  # modes restored
    _, batch, lengths = _pair()
    feats, _ = fe(batch.clone().requires_grad_(), lengths)
    feats.sum().backward()
    for name, p in fe.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name


def test_s3prl_layers_above_the_last_kept_are_frozen(tiny_wavlm):
    fe = S3prlMultiLayerFrontend(
        upstream="wavlm_local", path_or_url=str(tiny_wavlm), layers=[0, 1]
    )
    fe.freeze_unreachable()
    frozen = {n for n, p in fe.named_parameters() if not p.requires_grad}
    assert any("encoder.layers.1." in n for n in frozen)
    assert not any("encoder.layers.0." in n for n in frozen)
    assert any("feature_extractor" in n for n in frozen)


def test_s3prl_fast_padding_keeps_shapes(tiny_wavlm):
    fe = S3prlMultiLayerFrontend(
        upstream="wavlm_local", path_or_url=str(tiny_wavlm), exact_padding=False
    )
    _, batch, lengths = _pair()
    feats, flens = fe(batch, lengths)
    assert flens.tolist() == [(16000 - 400) // 320 + 1, (11111 - 400) // 320 + 1]
    assert feats.shape[:3] == (2, int(flens.max()), 3)


def test_s3prl_unknown_upstream_is_clear():
    with pytest.raises(ValueError, match="not an s3prl upstream"):
        S3prlMultiLayerFrontend(upstream="wavlm_hyper")


def test_s3prl_layer_selection(tiny_wavlm):
    fe = S3prlMultiLayerFrontend(
        upstream="wavlm_local", path_or_url=str(tiny_wavlm), layers=[0, 2]
    )
    feats, _ = fe(torch.randn(1, 8000), torch.tensor([8000]))
    assert fe.num_layers() == 2 and feats.shape[2] == 2


def test_s3prl_is_imported_without_espnets_training_stack(tiny_wavlm):
    """s3prl's hub imports every upstream, transformers and ESPnet's HuBERT task
    (with ESPnet's trainer, g2p, nltk) among them; a WavLM frontend imports
    WavLM's code only, and the rest still works when asked for."""
    import subprocess
    import sys

    script = f"""
import sys
from espnet2_merit.merit.frontend.s3prl import S3prlMultiLayerFrontend as F
F(upstream="wavlm_local", path_or_url="{tiny_wavlm}")
heavy = ("espnet2.tasks.abs_task", "g2p_en", "nltk", "transformers")
assert not [m for m in heavy if m in sys.modules], sys.modules.keys() & set(heavy)
from s3prl.nn import S3PRLUpstream
assert "wavlm_local" in S3PRLUpstream.available_names()  # the whole hub
assert "hf_wav2vec2_custom" in S3PRLUpstream.available_names()
from s3prl.upstream.espnet_hubert import expert
from espnet2.tasks.hubert import HubertTask
assert expert.HubertTask.build_model_from_file == HubertTask.build_model_from_file
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_s3prl_input_norm_switch(tiny_wavlm):
    """input_norm=True layer-normalises each waveform inside the upstream (gain
    does not matter), False feeds it as given (the release), None keeps the
    checkpoint's setting."""

    def run(input_norm, gain):
        fe = S3prlMultiLayerFrontend(
            upstream="wavlm_local", path_or_url=str(tiny_wavlm), input_norm=input_norm
        ).eval()
        torch.manual_seed(0)
        wav = gain * (0.1 * torch.randn(1, 8000) + 0.05)
        with torch.no_grad():
            return fe, fe(wav, torch.tensor([8000]))[0]

    fe, normed = run(True, 1.0)
    assert fe.upstream.upstream.cfg.normalize is True
    # (up to the layer norm's epsilon)
    assert (run(True, 3.0)[1] - normed).abs().max() < 2e-3
    fe, raw = run(False, 1.0)
    assert fe.upstream.upstream.cfg.normalize is False
    assert (run(False, 3.0)[1] - raw).abs().max() > 0.05
    default = S3prlMultiLayerFrontend(
        upstream="wavlm_local", path_or_url=str(tiny_wavlm)
    )
    assert default.upstream.upstream.cfg.normalize in (True, False)
