import pytest
import soundfile
import torch
import yaml
from merit_testing import TINY_CONFIGS

from espnet2_merit.tasks.merit import MeritTask


def _batch(data_dir, uids, with_ref=True):
    """Padded batch of generated utterances, as ESPnet's collate_fn builds it."""
    scp = dict(
        l.split(maxsplit=1) for l in (data_dir / "wav.scp").read_text().splitlines()
    )
    ref = dict(
        l.split(maxsplit=1) for l in (data_dir / "spk1.scp").read_text().splitlines()
    )
    lab = dict(l.split() for l in (data_dir / "emotion").read_text().splitlines())
    wavs = [torch.tensor(soundfile.read(scp[u], dtype="float32")[0]) for u in uids]
    refs = [torch.tensor(soundfile.read(ref[u], dtype="float32")[0]) for u in uids]
    lengths = torch.tensor([len(w) for w in wavs])
    pad = torch.nn.utils.rnn.pad_sequence
    batch = dict(
        speech=pad(wavs, batch_first=True),
        speech_lengths=lengths,
        emotion=torch.tensor([["ASHN".index(lab[u])] for u in uids]),
        emotion_lengths=torch.ones(len(uids), dtype=torch.long),
    )
    if with_ref:
        batch.update(
            speech_ref1=pad(refs, batch_first=True), speech_ref1_lengths=lengths
        )
    return batch


@pytest.mark.parametrize("config", TINY_CONFIGS, ids=lambda p: p.stem)
def test_forward_backward_and_stats(config, make_args, data_dirs):
    torch.manual_seed(0)
    args = make_args(config)
    model = MeritTask.build_model(args)
    uids = sorted(
        l.split()[0] for l in (data_dirs[0] / "emotion").read_text().splitlines()
    )
    loss, stats, weight = model(**_batch(data_dirs[0], uids[:3]))
    loss.backward()
    assert torch.isfinite(loss) and int(weight) == 3
    conf = yaml.safe_load(config.read_text())
    mconf = {
        "se_weight": 1.0,
        "ser_weight": 1.0,
        "balance_weight": 0.01,
        "z_loss_weight": 0.0,
        **(conf.get("model_conf") or {}),
    }
    expected = 0.0
    if conf["se_head"]:
        expected += mconf["se_weight"] * float(stats["se_loss"])
    if conf["ser_head"]:
        expected += mconf["ser_weight"] * float(stats["ser_loss"])
        assert 0.0 <= float(stats["acc"]) <= 1.0
    if conf["fusion"] in ("sparse_moe", "dense_moe"):
        expected += mconf["balance_weight"] * float(stats["balance_loss"])
        expected += mconf["z_loss_weight"] * float(stats["z_loss"])
        tasks = [t for t in ("se", "ser") if conf[f"{t}_head"]]
        for task in tasks:
            usage = torch.cat([stats[f"{task}_expert{i}"] for i in range(3)])
            assert usage.sum() == pytest.approx(1.0, abs=1e-5)
    assert float(stats["loss"]) == pytest.approx(float(expected), rel=1e-5)
    # Every trainable parameter outside the frozen CNN gets a gradient.
    for name, p in model.named_parameters():
        if (
            "feature_extractor" not in name
            and "mask_emb" not in name
            and "label_embs" not in name
        ):
            assert p.grad is not None, name


@pytest.mark.parametrize(
    "config",
    [c for c in TINY_CONFIGS if "sparse" in c.name or "naive" in c.name],
    ids=lambda p: p.stem,
)
def test_batch_equals_one_by_one(config, make_args, data_dirs):
    torch.manual_seed(0)
    model = MeritTask.build_model(make_args(config)).eval()
    uids = sorted(
        l.split()[0] for l in (data_dirs[0] / "emotion").read_text().splitlines()
    )
    pair = [uids[0], uids[5]]  # different lengths
    batch = _batch(data_dirs[0], pair)
    with torch.no_grad():
        fused, flens = model.encode(batch["speech"], batch["speech_lengths"])
        logits = model.ser_head(fused.features["ser"], flens)
        se = model.se_head(
            batch["speech"], batch["speech_lengths"], fused.features["se"], flens
        )
        for b, uid in enumerate(pair):
            one = _batch(data_dirs[0], [uid])
            f1, l1 = model.encode(one["speech"], one["speech_lengths"])
            assert int(l1[0]) == int(flens[b])
            torch.testing.assert_close(
                model.ser_head(f1.features["ser"], l1)[0],
                logits[b],
                atol=1e-4,
                rtol=1e-4,
            )
            se1 = model.se_head(
                one["speech"], one["speech_lengths"], f1.features["se"], l1
            )
            n = int(one["speech_lengths"][0])
            torch.testing.assert_close(se1.wav[0], se.wav[b, :n], atol=1e-4, rtol=1e-4)
            if "sparse" in config.name:
                e1, _ = f1.routes["ser"]
                eb, _ = fused.routes["ser"]
                assert torch.equal(e1[0, : int(l1[0])], eb[b, : int(l1[0])])


def test_se_on_without_reference_is_an_error(make_args, data_dirs):
    model = MeritTask.build_model(make_args(TINY_CONFIGS[-1]))
    uids = sorted(
        l.split()[0] for l in (data_dirs[0] / "emotion").read_text().splitlines()
    )
    with pytest.raises(ValueError, match="speech_ref1"):
        model(**_batch(data_dirs[0], uids[:2], with_ref=False))


def test_collect_feats_gives_waveform_statistics_input(make_args):
    model = MeritTask.build_model(make_args(TINY_CONFIGS[-1]))
    wav = torch.randn(2, 100)
    feats = model.collect_feats(wav, torch.tensor([100, 60]))
    assert feats["feats"].shape == (2, 100, 1)
    assert feats["feats_lengths"].tolist() == [100, 60]
