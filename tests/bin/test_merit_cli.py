"""The ``merit`` command line: predict / enhance / routes / export."""

import csv
import io
import json
from importlib.metadata import entry_points

import numpy as np
import pytest
import soundfile

from espnet2_merit.bin.merit_cli import main
from espnet2_merit.utils.packing import pack_model
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
    assert "Flash" not in text  # library chatter goes to stderr


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


def test_bad_files_are_reported_and_the_good_ones_predicted(
    capsys, model_zip, wavs, tmp_path
):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, np.float32), 16000)
    short = tmp_path / "short.wav"
    soundfile.write(short, np.zeros(100, np.float32), 16000)
    nan = tmp_path / "nan.wav"
    soundfile.write(nan, np.full(8000, np.nan, np.float32), 16000, subtype="FLOAT")
    files = [wavs[0], str(bad), str(empty), str(short), "nope.wav", str(nan), wavs[2]]
    with pytest.raises(SystemExit) as e:
        main(["predict", *files, "--model", model_zip, "--json", "--batch_size", "2"])
    assert e.value.code == 1
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]  # stdout: results only
    assert [r["file"] for r in rows] == files
    assert "label" in rows[0] and "label" in rows[-1]
    errors = {r["file"]: r["error"] for r in rows if "error" in r}
    assert "not a readable audio file" in errors[str(bad)]
    assert "the file has no samples" in errors[str(empty)]
    assert f"{short}: 0.006 s is shorter than one" in errors[str(short)]
    assert "no such file" in errors["nope.wav"]
    assert f"{nan}: contains NaN" in errors[str(nan)]
    assert f"merit predict: error: {bad}" in err


def test_clear_errors(model_zip, wavs, tmp_path):
    with pytest.raises(SystemExit, match="'missing.zip': no such file, and not a URL"):
        main(["predict", wavs[0], "--model", "missing.zip"])
    with pytest.raises(SystemExit, match="is a directory"):
        main(["enhance", wavs[0], "-o", str(tmp_path), "--model", model_zip])
    with pytest.raises(SystemExit, match="not an audio format"):
        main(["enhance", wavs[0], "-o", str(tmp_path / "x.txt"), "--model", model_zip])
    with pytest.raises(SystemExit, match="2"):  # argparse: --batch_size must be > 0
        main(["predict", wavs[0], "--model", model_zip, "--batch_size", "0"])
    with pytest.raises(SystemExit, match="needs --model_file"):
        main(["predict", wavs[0], "--train_config", "x/config.yaml"])


def test_short_windows_get_a_valid_default_overlap(capsys, model_zip, wavs):
    out = _run(capsys, "predict", wavs[0], "--model", model_zip, "--json",
               "--window_sec", "0.5")  # fmt: skip
    assert len(json.loads(out)["windows"]) == 3  # 1.2 s, hop 0.4 s


def test_export_onnx_matches_torch(capsys, model_zip, tmp_path):
    out = tmp_path / "ser.onnx"
    report = _run(capsys, "export", "--onnx", str(out), "--model", model_zip)
    assert out.exists() and "max |onnx - torch|" in report


def test_export_refuses_a_frontend_it_cannot_trace(trained_exp, tmp_path):
    import yaml

    conf = yaml.safe_load(trained_exp[0].read_text())
    conf.update(frontend="fbank", frontend_conf={"n_mels": 40})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(conf))
    from espnet2_merit.tasks.merit import MeritTask

    model, _ = MeritTask.build_model_from_file(config, allow_random_init=True)
    torch_file = tmp_path / "model.pth"
    import torch

    torch.save(model.state_dict(), torch_file)
    with pytest.raises(
        SystemExit, match="supports s3prl WavLM frontends.*FbankFrontend"
    ):
        main(["export", "--onnx", str(tmp_path / "x.onnx"),
              "--train_config", str(config), "--model_file", str(torch_file)])  # fmt: skip
