"""The ``merit`` command line: predict / enhance / routes / export."""

import csv
import io
import json
from importlib.metadata import entry_points

import numpy as np
import pytest
import soundfile

from espnet2_merit.bin.merit_cli import main
from espnet2_merit.bin.merit_pack import pack_model
from espnet2_merit.utils.synthetic import voice


@pytest.fixture(scope="module")
def model_zip(trained_exp, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return str(pack_model(*trained_exp, root / "model.zip"))


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    root = tmp_path_factory.mktemp("wavs")
    paths = []
    for i, (label, fs) in enumerate((("A", 16000), ("S", 22050), ("H", 16000))):
        path = root / f"{label}{i}.wav"
        soundfile.write(path, voice(label, 1.2, fs, np.random.default_rng(i)), fs)
        paths.append(str(path))
    return paths


def _run(capsys, *cmd):
    main(list(cmd))
    return capsys.readouterr().out


def test_console_script_is_installed():
    (ep,) = entry_points(group="console_scripts", name="merit")
    assert ep.value == "espnet2_merit.bin.merit_cli:main"


def test_predict_json_csv_table(capsys, model_zip, wavs):
    out = _run(capsys, "predict", *wavs, "--model", model_zip, "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in rows] == wavs
    for r in rows:
        assert r["label"] in {"A", "S", "H", "N"}
        assert r["confidence"] == pytest.approx(max(r["probs"].values()))
    table = list(csv.DictReader(io.StringIO(_run(capsys, "predict", *wavs, "--model", model_zip, "--csv"))))  # fmt: skip
    assert [t["emotion"] for t in table] == [r["label"] for r in rows]
    text = _run(capsys, "predict", wavs[0], "--model", model_zip)
    assert text.splitlines()[0].split() == ["file", "emotion", "confidence"]


def test_enhance_writes_same_length_and_rate(capsys, model_zip, wavs, tmp_path):
    out = tmp_path / "clean.wav"
    _run(capsys, "enhance", wavs[1], "-o", str(out), "--model", model_zip)
    enhanced, fs = soundfile.read(out)
    noisy, fs_in = soundfile.read(wavs[1])
    assert fs == fs_in == 22050 and len(enhanced) == len(noisy)


def test_routes_plot_is_a_png(capsys, model_zip, wavs, tmp_path):
    out = tmp_path / "routes.png"
    _run(capsys, "routes", wavs[0], "-o", str(out), "--model", model_zip)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_clear_errors(model_zip, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(SystemExit, match=r"bad.wav: not a readable audio file"):
        main(["predict", str(bad), "--model", model_zip])
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(SystemExit, match="empty.wav: the file has no samples"):
        main(["predict", str(empty), "--model", model_zip])
    short = tmp_path / "short.wav"
    soundfile.write(short, np.zeros(100, np.float32), 16000)
    with pytest.raises(SystemExit, match="short.wav: 0.006 s is shorter than one"):
        main(["predict", str(short), "--model", model_zip])
    with pytest.raises(SystemExit, match="'missing.zip': no such file, and not a URL"):
        main(["predict", str(short), "--model", "missing.zip"])
    with pytest.raises(SystemExit, match="nope.wav: no such file"):
        main(["predict", "nope.wav", "--model", model_zip])


def test_export_onnx_matches_torch(capsys, model_zip, tmp_path):
    out = tmp_path / "ser.onnx"
    report = _run(capsys, "export", "--onnx", str(out), "--model", model_zip)
    assert out.exists() and "max |onnx - torch|" in report
