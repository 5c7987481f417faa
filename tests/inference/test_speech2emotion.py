"""Speech2EmotionEnhance: results of every task, any rate and layout, batches
equal one-by-one, long audio in windows, strict loading, packing."""

import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
import torchaudio
import yaml
from merit_testing import REPO

from espnet2_merit.errors import MeritInputError
from espnet2_merit.inference.speech2emotion import Speech2EmotionEnhance
from espnet2_merit.tasks.merit import MeritTask
from espnet2_merit.utils.packing import pack_model
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
    assert list(res.tasks) == ["se", "ser"]
    assert res.tasks["ser"].kind == "label" and res.tasks["se"].kind == "waveform"
    assert res.probs.shape == (4,) and res.probs.sum() == pytest.approx(1, abs=1e-5)
    assert res.label == res.emotion_list[int(res.probs.argmax())]
    assert res.enhanced.shape == wav.shape and np.isfinite(res.enhanced).all()
    assert set(res.routes) == {"se", "ser"} and not res.silent
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
    assert d["tasks"]["ser"]["label"] == res.label and "se" not in d["tasks"]


@pytest.mark.parametrize("fs", [8000, 44100])
def test_other_sampling_rates_are_resampled(s2e, fs):
    wav = _speech(1.2, fs=fs)
    res = s2e(wav, fs=fs)
    ref = s2e(torchaudio.functional.resample(torch.from_numpy(wav), fs, FS).numpy())
    np.testing.assert_allclose(res.probs, ref.probs, atol=1e-6)
    assert res.fs == fs and res.enhanced.shape == wav.shape


def test_channels_last_and_first_are_averaged(s2e):
    wav = np.stack([_speech(1.0, 1), _speech(1.0, 2)], axis=1)  # (N, 2)
    mono = s2e(wav.mean(1))
    _assert_same(s2e(wav), mono)
    _assert_same(s2e(wav.T), mono)  # torchaudio's (channels, N)
    _assert_same(s2e(torch.from_numpy(wav.mean(1))[None]), mono)  # (1, N)


def test_integer_pcm_is_scaled_like_soundfile(s2e):
    wav = _speech(1.0, 3)
    pcm = np.round(np.clip(wav, -1, 32767 / 32768) * 32768).astype(np.int16)
    _assert_same(s2e(pcm), s2e(pcm.astype(np.float32) / 32768))


def test_silence_is_flagged(s2e, caplog):
    res = s2e(np.zeros(FS, np.float32))
    assert res.silent and res.to_dict()["silent"] is True
    assert "digitally silent" in caplog.text


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
    s2e = Speech2EmotionEnhance(*trained_exp, window_sec=4.0, overlap_sec=1.0)
    seen = []
    encode = s2e.model.encode
    monkeypatch.setattr(
        s2e.model,
        "encode",
        lambda x, n, *a: seen.append(x.shape[1]) or encode(x, n, *a),
    )
    wav = _speech(20.3)
    res = s2e(wav)
    assert max(seen) <= 4 * FS and len(res.windows) == len(seen) == 7
    assert res.enhanced.shape == wav.shape and np.isfinite(res.enhanced).all()
    for r in res.routes.values():  # one frame per 20 ms over the whole recording
        np.testing.assert_allclose(np.diff(r.times), 0.02, atol=1e-9)
        assert r.times[0] == 0 and r.times[-1] > 20.3 - 0.05
    # The utterance posterior is the windows' average weighted by their share.
    shares = np.diff([0] + [(w.end + n.start) / 2 for w, n in zip(res.windows, res.windows[1:])] + [20.3])  # fmt: skip
    mean = np.average(
        [w.tasks["ser"].value for w in res.windows], axis=0, weights=shares
    )
    np.testing.assert_allclose(res.probs, mean, atol=1e-4)
    assert len(s2e(_speech(3.5)).windows) == 1  # a window-sized recording


def test_default_overlap_fits_a_short_window(trained_exp):
    s2e = Speech2EmotionEnhance(*trained_exp, window_sec=3.0)
    assert len(s2e(_speech(7.0)).windows) == 3  # overlap 0.6 s: hop 2.4 s


@pytest.mark.slow
def test_long_audio_peak_memory_is_bounded(trained_exp):
    """Peak RSS for 120 s of audio stays close to that of 20 s (activations are
    per window; only the output waveform grows)."""
    script = (
        "import resource, sys, numpy as np\n"
        "from espnet2_merit.inference.speech2emotion import Speech2EmotionEnhance\n"
        "s = Speech2EmotionEnhance(sys.argv[1], sys.argv[2], window_sec=5)\n"
        "s(np.random.default_rng(0).standard_normal(16000 * 5).astype('f4'))\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "s(np.random.default_rng(0).standard_normal(16000 * int(sys.argv[3])).astype('f4'))\n"  # noqa: E501
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)\n"
    )
    growth = {}
    for seconds in (20, 120):
        out = subprocess.run(
            [sys.executable, "-c", script, *map(str, trained_exp), str(seconds)],
            capture_output=True, text=True, cwd=REPO, timeout=600,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        growth[seconds] = int(out.stdout.split()[-1]) / 1024  # MiB
    # 100 s more audio: input, resampled copy, output and cross-fade buffers
    # (~4 x 6 MiB); unwindowed attention alone would need gigabytes.
    assert growth[120] - growth[20] < 100, growth


def test_strict_loading_names_missing_extra_and_shapes(trained_exp, tmp_path):
    config, model_file = trained_exp
    state = torch.load(model_file, weights_only=True)
    name = next(k for k in state if k.startswith("fusion.router"))
    state["surprise.weight"] = state.pop(name)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(MeritInputError, match=rf"missing.*{name}.*surprise.weight"):
        MeritTask.build_model_from_file(config, bad)
    state = torch.load(model_file, weights_only=True)
    key = next(k for k in state if k.endswith("weight") and state[k].dim() == 2)
    state[key] = torch.zeros(3, 3)
    torch.save(state, bad)
    with pytest.raises(MeritInputError, match=rf"wrong shapes.*{key} \(3, 3\)"):
        MeritTask.build_model_from_file(config, bad)


def test_nan_weights_are_an_error_naming_the_file(trained_exp, tmp_path):
    config, model_file = trained_exp
    state = torch.load(model_file, weights_only=True)
    key = next(k for k in state if k.startswith("heads.ser") and "weight" in k)
    state[key] = torch.full_like(state[key], float("nan"))
    bad = tmp_path / "nan.pth"
    torch.save(state, bad)
    with pytest.raises(MeritInputError, match=rf"nan.pth: parameter '{key}' has NaN"):
        Speech2EmotionEnhance(config, bad)


def test_bad_inputs(s2e, trained_exp):
    with pytest.raises(MeritInputError, match="shorter than one model frame"):
        s2e(np.zeros(300, np.float32))
    with pytest.raises(MeritInputError, match="NaN"):
        s2e(np.full(8000, np.nan, np.float32))
    with pytest.raises(MeritInputError, match="fs must be a positive integer"):
        s2e(_speech(1.0), fs=0)
    with pytest.raises(MeritInputError, match="one positive length per row"):
        s2e.batch(np.zeros((2, 8000), np.float32), speech_lengths=[8000, -5])
    with pytest.raises(MeritInputError, match="neither"):
        s2e(np.zeros((100, 100), np.float32))
    with pytest.raises(MeritInputError, match="model file: no such file"):
        Speech2EmotionEnhance(trained_exp[0], "missing.pth")
    with pytest.raises(MeritInputError, match="random initial weights"):
        Speech2EmotionEnhance(trained_exp[0])
    with pytest.raises(MeritInputError, match="no such file, and not a URL"):
        Speech2EmotionEnhance.from_pretrained("missing.zip")


def test_pack_unpack_from_pretrained_roundtrip(trained_exp, s2e, tmp_path):
    """The zip carries the SSL checkpoint and statistics the config points to: the
    model loads after the originals are gone, with identical outputs."""
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
    loaded = Speech2EmotionEnhance.from_pretrained(
        str(zip_path), cachedir=tmp_path / "cache", batch_size=4
    )
    wav = _speech(1.3, 5)
    a, b = s2e(wav), loaded(wav)
    np.testing.assert_array_equal(a.probs, b.probs)
    np.testing.assert_array_equal(a.enhanced, b.enhanced)
