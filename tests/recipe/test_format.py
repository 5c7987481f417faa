"""merit_format_wav (stage 3: mono wav at one rate) and merit_filter (stage 4:
duration filtering) on tiny generated data directories."""

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet2_merit.bin import merit_filter, merit_format_wav
from espnet2_merit.recipe.filter import filter_dir

FS = 16000
TEXT = {"emotion": "A", "emotion_attr": "4.0 3.0 2.0", "utt2spk": "s1", "utt2snr": "5"}


def _write(path: Path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(rows)), encoding="utf-8")


def read_table(path: Path):
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines())


def tone(seconds: float, fs: int, freq: float = 440.0) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * fs)) / fs)


def make_dir(root: Path, utts, with_clean=True) -> Path:
    """A data dir from {utt: (noisy (T, C), clean (T, C), fs, format, subtype)}."""
    wav, spk1 = [], []
    for utt, (noisy, clean, fs, fmt, subtype) in utts.items():
        for rows, x, kind in ((wav, noisy, "noisy"), (spk1, clean, "clean")):
            path = root / "audio" / f"{utt}_{kind}.{fmt.lower()}"
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(path, x, fs, format=fmt, subtype=subtype)
            rows.append((utt, path))
    _write(root / "wav.scp", wav)
    if with_clean:
        _write(root / "spk1.scp", spk1)
    for name, value in TEXT.items():
        _write(root / name, [(u, value) for u in utts])
    (root / "emotion_list").write_text("A\nS\nH\nN\n")
    return root


def test_stereo_44k_becomes_16k_mono(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    t = tone(1.3, 44100)
    stereo = np.stack([t, 0.5 * t], axis=1)  # mono mix: 0.75 x tone
    clean = stereo * 0.5
    noisy = stereo + 0.001 * rng.standard_normal(stereo.shape)
    make_dir(tmp_path / "in", {"u1": (noisy, clean, 44100, "WAV", "PCM_16")})
    monkeypatch.chdir(tmp_path)  # relative dirs: the lists still hold absolute paths
    merit_format_wav.main(["--fs", "16000", "--nj", "1", "in", "out"])
    out = tmp_path / "out"
    n = int(np.ceil(len(t) * 16000 / 44100))
    assert read_table(out / "utt2num_samples") == {"u1": str(n)}
    for name, gain in (("wav.scp", 0.75), ("spk1.scp", 0.375)):
        path = Path(read_table(out / name)["u1"])
        assert path == out / "data" / name.replace(".scp", "") / "u1.wav"
        info = soundfile.info(path)
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (
            FS, 1, n, "PCM_16"
        )  # fmt: skip
        x = soundfile.read(path)[0]
        expected = gain * tone(1.3, FS)[:n]
        # away from the edges the resampled tone is the tone at 16 kHz
        tol = 0.01 if name == "wav.scp" else 2e-3
        np.testing.assert_allclose(x[200:-200], expected[200:-200], atol=tol)
    for name, value in TEXT.items():
        assert (out / name).read_text() == f"u1 {value}\n"
    assert (out / "emotion_list").read_text() == "A\nS\nH\nN\n"


def test_mono_wav_at_fs_is_kept_in_place_and_formats_are_kept(tmp_path, caplog):
    x = tone(1.0, FS)[:, None]
    square = np.sign(tone(1.0, 22050, 1000.0))[:, None] * 32767 / 32768
    src = make_dir(
        tmp_path / "in",
        {
            "a": (x, x, FS, "WAV", "PCM_16"),  # kept in place
            "b": (x, x, 22050, "WAV", "FLOAT"),  # float stays float
            "c": (x, x, FS, "FLAC", "PCM_16"),  # flac becomes wav
            "d": (square, square, 22050, "WAV", "PCM_16"),  # overshoots 1 at 16 kHz
        },
    )
    with caplog.at_level(logging.INFO):
        merit_format_wav.main(["--nj", "2", str(src), str(tmp_path / "out")])
    out = tmp_path / "out"
    wav, spk1 = read_table(out / "wav.scp"), read_table(out / "spk1.scp")
    original = read_table(src / "wav.scp")
    assert wav["a"] == original["a"]
    assert spk1["a"] == read_table(src / "spk1.scp")["a"]
    assert soundfile.info(wav["b"]).subtype == "FLOAT"
    assert soundfile.info(wav["c"]).format == "WAV"
    assert soundfile.info(wav["c"]).subtype == "PCM_16"
    lengths = read_table(out / "utt2num_samples")
    # resampled: ceil(16000 x 16000 / 22050) samples
    assert lengths == {"a": "16000", "b": "11610", "c": "16000", "d": "16000"}
    d = soundfile.read(wav["d"])[0]
    assert soundfile.info(wav["d"]).subtype == "FLOAT" and np.abs(d).max() > 1.0
    assert "3 formatted, 1 already mono wav" in caplog.text
    assert "1 kept as float (16 bits would clip)" in caplog.text


def test_format_errors(tmp_path):
    x = tone(0.5, FS)[:, None]
    src = make_dir(
        tmp_path / "in",
        {"a": (x, x, FS, "WAV", "PCM_16"), "b": (x, x, FS, "WAV", "PCM_16")},
    )
    bad = Path(read_table(src / "wav.scp")["b"])
    bad.write_text("not audio")
    with pytest.raises(
        SystemExit,
        match=f"merit_format_wav: error: wav.scp: utterance 'b': cannot read audio '{bad}'",
    ):
        merit_format_wav.main([str(src), str(tmp_path / "o1")])
    soundfile.write(bad, x, FS)
    _write(src / "spk1.scp", [("a", read_table(src / "spk1.scp")["a"])])
    with pytest.raises(SystemExit, match="spk1.scp: utterance 'b' is missing"):
        merit_format_wav.main([str(src), str(tmp_path / "o2")])
    (src / "spk1.scp").unlink()
    merit_format_wav.main(
        [str(src), str(tmp_path / "o3")]
    )  # the clean list is optional
    assert not (tmp_path / "o3" / "spk1.scp").exists()
    short = tmp_path / "short.wav"
    soundfile.write(short, x[:100], FS)
    _write(src / "spk1.scp", [("a", short), ("b", bad)])
    with pytest.raises(SystemExit, match="utterance 'a': spk1.scp has 100 samples"):
        merit_format_wav.main([str(src), str(tmp_path / "o4")])
    with pytest.raises(SystemExit, match="wav.scp: no such file"):
        merit_format_wav.main([str(tmp_path / "nothing"), str(tmp_path / "o5")])


def _dump_dir(root: Path, seconds) -> Path:
    """A dump dir whose utterances last ``seconds``."""
    utts = {f"u{i}": s for i, s in enumerate(seconds)}
    _write(root / "wav.scp", [(u, f"/a/{u}.wav") for u in utts])
    _write(root / "spk1.scp", [(u, f"/a/{u}_clean.wav") for u in utts])
    _write(root / "utt2num_samples", [(u, int(s * FS)) for u, s in utts.items()])
    for name, value in TEXT.items():
        _write(root / name, [(u, value) for u in utts])
    (root / "emotion_list").write_text("A\n")
    return root


def test_filter_keeps_the_durations_in_range(tmp_path, caplog):
    src = _dump_dir(tmp_path / "in", [0.5, 1.0, 1.5, 2.0, 3.0, 25.0])
    with caplog.at_level(logging.INFO):
        merit_filter.main(
            [
                "--min_sec",
                "1.0",
                "--max_sec",
                "2.0",
                "--fs",
                "16000",
                str(src),
                str(tmp_path / "out"),
            ]
        )
    assert "kept 3, too short 1 (< 1.0 s), too long 2 (> 2.0 s)" in caplog.text
    out = tmp_path / "out"
    for name in ("wav.scp", "spk1.scp", "utt2num_samples", *TEXT):
        assert sorted(read_table(out / name)) == ["u1", "u2", "u3"], name
    assert read_table(out / "wav.scp")["u2"] == "/a/u2.wav"
    assert (out / "emotion_list").read_text() == "A\n"
    counts = filter_dir(src, tmp_path / "o2", 0.0, 100.0, 8000)
    assert counts == {"kept": 6, "too_short": 0, "too_long": 0}


def test_filter_errors(tmp_path):
    src = _dump_dir(tmp_path / "in", [0.5, 0.7])
    with pytest.raises(
        SystemExit,
        match="merit_filter: error: .*no utterance is between 1.0 and 20.0 s",
    ):
        merit_filter.main(
            ["--min_sec", "1.0", "--max_sec", "20", str(src), str(tmp_path / "out")]
        )
    _write(src / "utt2num_samples", [("u0", 8000)])
    with pytest.raises(
        SystemExit, match="utt2num_samples: no entry for utterance 'u1'"
    ):
        merit_filter.main(["--min_sec", "0.1", str(src), str(tmp_path / "out")])
    with pytest.raises(SystemExit, match="--min_sec <= --max_sec"):
        merit_filter.main(
            ["--min_sec", "3", "--max_sec", "2", str(src), str(tmp_path / "out")]
        )
