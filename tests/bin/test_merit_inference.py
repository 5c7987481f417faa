"""Speech2EmotionEnhance, strict loading, packing and the recipe entry point."""

import subprocess
import sys
import zipfile

import numpy as np
import pytest
import soundfile
import torch
import torchaudio
import yaml
from merit_testing import REPO

from espnet2_merit.bin.merit_inference import Speech2EmotionEnhance, load_model
from espnet2_merit.bin.merit_inference import main as inference_main
from espnet2_merit.bin.merit_pack import pack_model
from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.synthetic import voice

FS = 16000


def _speech(seconds, seed=0, fs=FS):
    rng = np.random.default_rng(seed)
    wav = voice("A", seconds, fs, rng) + 0.05 * rng.standard_normal(int(seconds * fs))
    return wav.astype(np.float32)


@pytest.fixture(scope="module")
def s2e(trained_exp):
    return Speech2EmotionEnhance(*trained_exp, batch_size=4)


def _assert_same(a, b, atol=1e-5):
    np.testing.assert_allclose(a.probs, b.probs, atol=atol)
    np.testing.assert_allclose(a.enhanced, b.enhanced, atol=atol)
    for task in a.routes:
        np.testing.assert_array_equal(a.routes[task].experts, b.routes[task].experts)
        np.testing.assert_allclose(
            a.routes[task].gates, b.routes[task].gates, atol=atol
        )
        np.testing.assert_allclose(a.routes[task].times, b.routes[task].times)


def test_result_fields(s2e):
    wav = _speech(1.5)
    res = s2e(wav)
    assert res.fs == FS and res.emotion_list == ["A", "S", "H", "N"]
    assert res.probs.shape == (4,) and res.probs.sum() == pytest.approx(1, abs=1e-5)
    assert res.label == res.emotion_list[int(res.probs.argmax())]
    assert res.enhanced.shape == wav.shape and np.isfinite(res.enhanced).all()
    assert set(res.routes) == {"se", "ser"}
    for r in res.routes.values():
        frames = (len(wav) - 400) // 320 + 1
        assert r.experts.shape == r.gates.shape == (frames, 1)
        assert set(np.unique(r.experts)) <= {0, 1, 2}
        assert ((r.gates > 0) & (r.gates <= 1)).all()  # top-1: renormalised to 1
        np.testing.assert_allclose(np.diff(r.times), 0.02)
        assert r.usage(3).sum() == pytest.approx(1)
    assert len(res.windows) == 1 and res.windows[0].end == pytest.approx(1.5)
    d = res.to_dict(frames=True)
    assert d["label"] == res.label and len(d["routes"]["ser"]["times"]) == frames


@pytest.mark.parametrize("fs", [8000, 44100])
def test_other_sampling_rates_are_resampled(s2e, fs):
    wav = _speech(1.2, fs=fs)
    res = s2e(wav, fs=fs)
    ref = s2e(torchaudio.functional.resample(torch.from_numpy(wav), fs, FS).numpy())
    np.testing.assert_allclose(res.probs, ref.probs, atol=1e-6)
    assert res.fs == fs and res.enhanced.shape == wav.shape


def test_multichannel_is_averaged(s2e):
    wav = np.stack([_speech(1.0, 1), _speech(1.0, 2)], axis=1)  # (N, 2)
    _assert_same(s2e(wav), s2e(wav.mean(1)))


def test_batch_equals_one_by_one(s2e):
    wavs = [_speech(s, i) for i, s in enumerate((1.0, 1.77, 0.61))]
    padded = np.zeros((3, max(map(len, wavs))), np.float32)
    for i, w in enumerate(wavs):
        padded[i, : len(w)] = w
    batched = s2e.batch(padded, speech_lengths=[len(w) for w in wavs])
    listed = s2e.batch(wavs)
    for i, w in enumerate(wavs):
        single = s2e(w)
        _assert_same(batched[i], single)
        _assert_same(listed[i], single)


def test_long_audio_is_windowed(trained_exp, monkeypatch):
    s2e = Speech2EmotionEnhance(*trained_exp, window_sec=8.0, overlap_sec=2.0)
    seen = []
    encode = s2e.model.encode
    monkeypatch.setattr(
        s2e.model,
        "encode",
        lambda x, n, *a: seen.append(x.shape[1]) or encode(x, n, *a),
    )
    wav = _speech(61.3)
    res = s2e(wav)
    assert max(seen) <= 8 * FS and len(res.windows) == len(seen) == 10
    assert res.enhanced.shape == wav.shape and np.isfinite(res.enhanced).all()
    for r in res.routes.values():  # one frame per 20 ms over the whole recording
        np.testing.assert_allclose(np.diff(r.times), 0.02, atol=1e-9)
        assert r.times[0] == 0 and r.times[-1] > 61.3 - 0.05
    # The utterance posterior is the windows' average weighted by their share.
    shares = np.diff([0] + [(w.end + n.start) / 2 for w, n in zip(res.windows, res.windows[1:])] + [61.3])  # fmt: skip
    mean = np.average([w.probs for w in res.windows], axis=0, weights=shares)
    np.testing.assert_allclose(res.probs, mean, atol=1e-4)
    # A window-sized recording is one window, and matches the unwindowed model.
    short = _speech(7.5)
    assert len(s2e(short).windows) == 1


@pytest.mark.slow
def test_long_audio_peak_memory_is_bounded(trained_exp):
    """Peak RSS for 240 s of audio stays close to that of 30 s (activations are
    per window; only the output waveform grows)."""
    script = (
        "import resource, sys, numpy as np\n"
        "from espnet2_merit.bin.merit_inference import Speech2EmotionEnhance\n"
        "s = Speech2EmotionEnhance(sys.argv[1], sys.argv[2], window_sec=10)\n"
        "s(np.random.default_rng(0).standard_normal(16000 * 5).astype('f4'))\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "s(np.random.default_rng(0).standard_normal(16000 * int(sys.argv[3])).astype('f4'))\n"  # noqa: E501
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)\n"
    )
    growth = {}
    for seconds in (30, 240):
        out = subprocess.run(
            [sys.executable, "-c", script, *map(str, trained_exp), str(seconds)],
            capture_output=True, text=True, cwd=REPO, timeout=600,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        growth[seconds] = int(out.stdout.split()[-1]) / 1024  # MiB
    # 210 s more audio: input, resampled copy, output and cross-fade buffers
    # (~4 x 13 MiB); unwindowed attention alone would need gigabytes.
    assert growth[240] - growth[30] < 150, growth


def test_strict_loading_names_missing_and_extra(trained_exp, tmp_path):
    config, model_file = trained_exp
    state = torch.load(model_file, weights_only=True)
    name = next(k for k in state if k.startswith("fusion.router"))
    state["surprise.weight"] = state.pop(name)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(MeritInputError, match=rf"missing.*{name}.*surprise.weight"):
        load_model(config, bad)


def test_bad_inputs(s2e, trained_exp):
    with pytest.raises(MeritInputError, match="shorter than one model frame"):
        s2e(np.zeros(300, np.float32))
    with pytest.raises(MeritInputError, match="NaN"):
        s2e(np.full(8000, np.nan, np.float32))
    with pytest.raises(MeritInputError, match="model_file: no such file"):
        Speech2EmotionEnhance(trained_exp[0], "missing.pth")
    with pytest.raises(MeritInputError, match="no such file, and not a URL"):
        Speech2EmotionEnhance.from_pretrained("missing.zip")


def test_pack_unpack_from_pretrained_roundtrip(trained_exp, s2e, tmp_path):
    """The zip carries the SSL checkpoint and statistics the config points to: the
    model loads after the originals are gone, with identical outputs."""
    from espnet_model_zoo.downloader import ModelDownloader

    config, model_file = trained_exp
    conf = yaml.safe_load(config.read_text())
    own = tmp_path / "own"
    own.mkdir()
    for section, key in (("frontend_conf", "path_or_url"), ("normalize_conf", "stats_file")):  # fmt: skip
        copy = own / f"{section}.bin"
        copy.write_bytes(open(conf[section][key], "rb").read())
        conf[section][key] = str(copy)
    (own / "config.yaml").write_text(yaml.safe_dump(conf))
    zip_path = pack_model(own / "config.yaml", model_file, tmp_path / "m.zip")
    for f in own.glob("*.bin"):
        f.unlink()

    names = zipfile.ZipFile(zip_path).namelist()
    assert not any(n.startswith("/") for n in names), names
    meta = yaml.safe_load(zipfile.ZipFile(zip_path).read("meta.yaml"))
    assert set(meta["files"]) | set(meta["yaml_files"]) == {
        "model_file",
        "train_config",
    }
    files = ModelDownloader(tmp_path / "cache").download_and_unpack(str(zip_path))
    assert set(files) == {"model_file", "train_config"}

    loaded = Speech2EmotionEnhance.from_pretrained(
        str(zip_path), cachedir=tmp_path / "cache2", batch_size=4
    )
    wav = _speech(1.3, 5)
    a, b = s2e(wav), loaded(wav)
    np.testing.assert_array_equal(a.probs, b.probs)
    np.testing.assert_array_equal(a.enhanced, b.enhanced)


def test_recipe_entry_point_writes_one_shard(trained_exp, data_dirs, tmp_path):
    config, model_file = trained_exp
    _, valid = data_dirs
    keys = [line.split()[0] for line in (valid / "wav.scp").read_text().splitlines()]
    key_file = tmp_path / "keys.1"
    key_file.write_text("\n".join(keys[:4]) + "\n")
    out = tmp_path / "output.1"
    inference_main(
        [
            "--train_config", str(config), "--model_file", str(model_file),
            "--data_path_and_name_and_type", f"{valid}/wav.scp,speech,sound",
            "--key_file", str(key_file), "--output_dir", str(out),
            "--batch_size", "3",
        ]
    )  # fmt: skip
    emotion = dict(line.split() for line in (out / "emotion").read_text().splitlines())
    assert list(emotion) == keys[:4] and set(emotion.values()) <= {"A", "S", "H", "N"}
    post = (out / "posteriors").read_text().splitlines()
    assert all(abs(sum(map(float, p.split()[1:])) - 1) < 1e-4 for p in post)
    for line in (out / "spk1.scp").read_text().splitlines():
        key, path = line.split()
        enhanced, fs = soundfile.read(path)
        noisy, _ = soundfile.read(dict(
            line.split() for line in (valid / "wav.scp").read_text().splitlines()
        )[key])  # fmt: skip
        assert fs == FS and len(enhanced) == len(noisy)
    usage = (out / "routing" / "ser_usage").read_text().splitlines()
    assert len(usage) == 4 and all(len(u.split()) == 4 for u in usage)
    assert (out / "emotion_list").read_text().split() == ["A", "S", "H", "N"]
    assert not list(out.rglob("*.tmp"))


def test_recipe_entry_point_bad_key(trained_exp, data_dirs, tmp_path):
    _, valid = data_dirs
    key_file = tmp_path / "keys"
    key_file.write_text("nope-utt\n")
    with pytest.raises(SystemExit, match="1 keys not in"):
        inference_main(
            [
                "--train_config", str(trained_exp[0]),
                "--data_path_and_name_and_type", f"{valid}/wav.scp,speech,sound",
                "--key_file", str(key_file), "--output_dir", str(tmp_path / "o"),
            ]
        )  # fmt: skip
