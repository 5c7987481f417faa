"""--augmentation (MTL-AUG): each type is applied as documented, its label
matches the type drawn, draws are per (seed, epoch, utterance), development data
is not augmented, and a tiny MTL-AUG model trains through ESPnet's trainer."""

import numpy as np
import pytest
import soundfile
import torch
import yaml
from merit_testing import CONF, SPARSE_TINY

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import (
    AUG_LABEL,
    AUG_SOURCE,
    LabelTarget,
    SourceTarget,
    WaveformTarget,
)
from espnet2_merit.simulation.augmentation import TYPES, Augmenter, build_augmenter
from espnet2_merit.train.preprocessor import MeritPreprocessor
from espnet2_merit.utils.synthetic import voice

FS = 16000
MTL_AUG_TINY = CONF / "tuning" / "train_mtl_aug_tiny.yaml"


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    """(noise.scp, rir.scp): 2 noises, 1 synthetic RIR."""
    root = tmp_path_factory.mktemp("aug_pools")
    rng = np.random.default_rng(0)
    noise = []
    for i in range(2):
        path = root / f"n{i}.wav"
        soundfile.write(path, 0.1 * rng.standard_normal(FS // 2), FS)
        noise.append(f"n{i} {path}")
    t = np.arange(FS // 5) / FS
    rir = rng.standard_normal(len(t)) * np.exp(-t / 0.05) * 0.3
    rir[40] = 1.0
    soundfile.write(root / "r0.wav", rir, FS, subtype="FLOAT")
    (root / "noise.scp").write_text("\n".join(noise) + "\n")
    (root / "rir.scp").write_text(f"r0 {root / 'r0.wav'}\n")
    return str(root / "noise.scp"), str(root / "rir.scp")


def _speech(seed=0):
    return voice("A", 1.0, FS, np.random.default_rng(seed)).astype(np.float32)


def _only(kind, pools, **kw):
    return Augmenter([kind], FS, 7, pools[0], rir_scp=pools[1], **kw)


def test_each_type_is_applied_as_documented(pools):
    x = _speech()
    ref = {"speech_ref1": 0.5 * x}
    out, refs, kind = _only("none", pools)(x, ref, "u", 1)
    assert (
        kind == "none"
        and np.array_equal(out, x)
        and refs["speech_ref1"] is ref["speech_ref1"]
    )
    # Corruptions: the input only, same length.
    for kind in ("noise", "reverb", "mask"):
        out, refs, got = _only(kind, pools)(x, ref, "u", 1)
        assert got == kind and out.shape == x.shape and not np.allclose(out, x), kind
        assert np.array_equal(refs["speech_ref1"], ref["speech_ref1"]), kind
    noisy, _, _ = _only("noise", pools, snr_range=[5.0, 5.0])(x, ref, "u", 1)
    snr = 10 * np.log10(np.mean(x**2) / np.mean((noisy - x) ** 2))
    assert snr == pytest.approx(5.0, abs=0.01)
    masked, _, _ = _only("mask", pools)(x, ref, "u", 1)
    assert (masked == 0).sum() > (x == 0).sum()  # a zeroed time span
    # Changes of the utterance: the references get the same change.
    fast, refs, _ = _only("speed", pools, speed_factors=[1.25])(x, ref, "u", 1)
    assert len(fast) == len(x) * 4 // 5 and len(refs["speech_ref1"]) == len(fast)
    np.testing.assert_allclose(refs["speech_ref1"], 0.5 * fast, atol=1e-6)
    shifted, refs, _ = _only("pitch", pools)(x, ref, "u", 1)
    assert shifted.shape == x.shape and not np.allclose(shifted, x)
    np.testing.assert_allclose(refs["speech_ref1"], 0.5 * shifted, atol=1e-5)


def test_same_seed_epoch_and_utterance_give_the_same_augmentation(pools):
    aug = Augmenter(TYPES, FS, 7, pools[0], rir_scp=pools[1])
    x = _speech()
    a = aug(x, {}, "u1", 3)
    b = Augmenter(TYPES, FS, 7, pools[0], rir_scp=pools[1])(x, {}, "u1", 3)
    assert a[2] == b[2] and np.array_equal(a[0], b[0])
    drawn = {aug.draw(f"u{i}", e)[0] for i in range(20) for e in (1, 2)}
    assert drawn == set(TYPES)  # every type is drawn
    epochs = [aug.draw(f"u{i}", 1)[0] != aug.draw(f"u{i}", 2)[0] for i in range(20)]
    assert any(epochs)
    seeds = Augmenter(TYPES, FS, 8, pools[0], rir_scp=pools[1])
    assert any(aug.draw(f"u{i}", 1)[0] != seeds.draw(f"u{i}", 1)[0] for i in range(20))


def _preprocessor(pools, train, types=TYPES):
    targets = [
        WaveformTarget("speech_ref1"),
        LabelTarget(AUG_LABEL, list(types)),
        SourceTarget(AUG_SOURCE),
    ]
    aug = Augmenter(types, FS, 7, pools[0], rir_scp=pools[1])
    return MeritPreprocessor(train, targets, FS, augmenter=aug), aug


def test_the_label_is_the_type_drawn_and_dev_is_not_augmented(pools):
    pre, aug = _preprocessor(pools, train=True)
    pre.set_epoch(2)
    x = _speech()
    for i in range(12):
        out = pre(f"u{i}", {"speech": x, "speech_ref1": x.copy()})
        kind = aug.draw(f"u{i}", 2)[0]
        assert TYPES[int(out[AUG_LABEL][0])] == kind
        assert np.array_equal(out[AUG_SOURCE], x)  # the input before it
        if kind != "speed":
            assert len(out["speech"]) == len(x) == len(out["speech_ref1"])
    valid, _ = _preprocessor(pools, train=False)
    out = valid("u3", {"speech": x, "speech_ref1": x.copy()})
    assert int(out[AUG_LABEL][0]) == TYPES.index("none")
    assert np.array_equal(out["speech"], x) and np.array_equal(out[AUG_SOURCE], x)


@pytest.mark.parametrize(
    "conf, message",
    [
        ({"types": ["none", "echo"]}, "expected distinct types"),
        ({"types": ["none", "noise"]}, "type 'noise' needs augmentation.noise_scp"),
        ({"types": ["none"], "speed_factors": [1.0]}, "factors > 0 other than 1"),
        ({"types": ["none"], "time_mask": 0}, "time_mask: expected"),
        ({"types": ["none"], "colour": 1}, "unknown key 'colour'"),
        ({"types": ["none"], "pitch_semitones": "2"}, "augmentation: "),
    ],
)
def test_option_errors_name_the_key(conf, message):
    with pytest.raises(MeritInputError, match=message):
        build_augmenter(conf, FS, 0)


def _aug_opts(pools):
    return ["--augmentation", f"noise_scp={pools[0]}", "--augmentation",
            f"rir_scp={pools[1]}"]  # fmt: skip


@pytest.mark.parametrize(
    "config, extra, message",
    [
        (MTL_AUG_TINY, ["--augmentation", "types=[none,noise]"], "must be augmentation"),
        (SPARSE_TINY, ["--tasks", "aug.head=attentive_pooling", "--tasks",
         "aug.head_conf.target=aug_type", "--tasks", "aug.head_conf.classes=[none]"],
         "which only --augmentation makes"),
        (MTL_AUG_TINY, ["--max_cache_size", "1MB"], "augmentation: max_cache_size"),
    ],
)  # fmt: skip
def test_bad_augmentation_runs(pools, train_cmd, config, extra, message):
    from espnet2_merit.bin.merit_train import main as train_main

    cmd = train_cmd(config, "--ngpu", "0", "--dry_run", "true")
    if config == MTL_AUG_TINY:
        cmd += _aug_opts(pools)
    with pytest.raises(SystemExit, match=message):
        train_main([*cmd, *extra])


def test_tiny_mtl_aug_training(pools, train_cmd, tmp_path):
    """Two epochs of the MTL-AUG tiny config: the auxiliary tasks report their
    statistics, config.yaml records the pools, and inference leaves them out."""
    from espnet2_merit.bin.merit_train import main as train_main
    from espnet2_merit.inference.speech2emotion import Speech2EmotionEnhance

    cmd = train_cmd(MTL_AUG_TINY, "--ngpu", "0", "--max_epoch", "2")
    train_main([*cmd, *_aug_opts(pools), "--num_iters_per_epoch", "2"])
    exp = tmp_path / "exp"
    recorded = yaml.safe_load((exp / "config.yaml").read_text())
    assert recorded["augmentation"]["noise_scp"].startswith("/")
    stats = torch.load(exp / "checkpoint.pth", weights_only=False)["reporter"]
    for epoch in (1, 2):
        train = stats["stats"][epoch]["train"]
        assert 0 <= train["aug_acc"] <= 1 and np.isfinite(train["recon_loss"])
    valid = stats["stats"][2]["valid"]
    assert np.isfinite(valid["recon_loss"]) and np.isfinite(valid["ser_loss"])
    s2e = Speech2EmotionEnhance(exp / "config.yaml", exp / "valid.loss.best.pth")
    assert s2e.tasks == ["se", "ser"]
    result = s2e(_speech(), fs=FS)
    assert set(result.tasks) == {"se", "ser"}
