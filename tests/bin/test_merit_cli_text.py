"""The ``merit`` command line with a speech + text model: transcripts from
``--text``, ``--text_file`` or ``--asr_model``, and the ONNX export's token-id
inputs."""

import json

import numpy as np
import pytest
import soundfile
import torch

from espnet2_merit.bin.merit_cli import main
from espnet2_merit.inference.speech2emotion import Speech2EmotionEnhance
from espnet2_merit.utils.packing import pack_model
from espnet2_merit.utils.synthetic import voice

TEXTS = ["hello", "what a good day it was today really", "no it was not the bus"]


@pytest.fixture(scope="module")
def text_zip(text_exp, tmp_path_factory):
    return str(pack_model(*text_exp, tmp_path_factory.mktemp("zip") / "model.zip"))


@pytest.fixture(scope="module")
def s2e(text_exp):
    return Speech2EmotionEnhance(*text_exp, enhance=False)


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    root = tmp_path_factory.mktemp("wavs")
    paths = []
    for i, label in enumerate("ASH"):
        path = root / f"{label}{i}.wav"
        soundfile.write(path, voice(label, 1.2, 16000, np.random.default_rng(i)), 16000)
        paths.append(str(path))
    return paths


def _json(capsys, *cmd):
    main(list(cmd))
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _probs(row):
    return np.array(list(row["probs"].values()))


def test_predict_with_text(capsys, text_zip, wavs, s2e):
    (row,) = _json(capsys, "predict", wavs[0], "--text", TEXTS[1],
                   "--model", text_zip, "--json")  # fmt: skip
    assert row["text"] == TEXTS[1]
    ref = s2e(soundfile.read(wavs[0], dtype="float32")[0], text=TEXTS[1])
    np.testing.assert_allclose(_probs(row), ref.probs, atol=1e-5)
    (other,) = _json(capsys, "predict", wavs[0], "--text", TEXTS[0],
                     "--model", text_zip, "--json")  # fmt: skip
    assert not np.allclose(_probs(other), _probs(row))  # the transcript is read


def test_predict_with_a_text_file(capsys, text_zip, wavs, s2e, tmp_path):
    text = tmp_path / "text"
    # keyed by name without extension, or by the path as given
    text.write_text(f"A0 {TEXTS[0]}\n{wavs[1]} {TEXTS[1]}\nH2 {TEXTS[2]}\nzz other\n")
    rows = _json(capsys, "predict", *wavs, "--text_file", str(text),
                 "--model", text_zip, "--json", "--batch_size", "2")  # fmt: skip
    assert [r["text"] for r in rows] == TEXTS
    for r, t in zip(rows, TEXTS):
        ref = s2e(soundfile.read(r["file"], dtype="float32")[0], text=t)
        np.testing.assert_allclose(_probs(r), ref.probs, atol=1e-5)
    # One line of another key is not this file's transcript (nor plain text).
    other = tmp_path / "other"
    other.write_text(f"zz {TEXTS[2]}\n")
    with pytest.raises(SystemExit, match="no line for .*key 'A0'"):
        _json(capsys, "predict", wavs[0], "--text_file", str(other),
              "--model", text_zip, "--json")  # fmt: skip


def test_predict_text_errors(text_zip, wavs, tmp_path, trained_exp):
    text = tmp_path / "text"
    text.write_text(f"A0 {TEXTS[0]}\n")
    with pytest.raises(SystemExit, match=rf"--text_file {text}: no line for {wavs[1]}"):
        main(["predict", *wavs, "--text_file", str(text), "--model", text_zip])
    with pytest.raises(SystemExit, match="--text is the transcript of one file"):
        main(["predict", *wavs[:2], "--text", "hello", "--model", text_zip])
    with pytest.raises(SystemExit, match="reads transcripts.*--asr_model"):
        main(["predict", wavs[0], "--model", text_zip])
    with pytest.raises(SystemExit, match="no such file"):
        main(["predict", wavs[0], "--text_file", "nope", "--model", text_zip])
    with pytest.raises(SystemExit) as e:  # an empty transcript: that file fails
        main(["predict", wavs[0], "--text", " ", "--model", text_zip])
    assert e.value.code == 1
    with pytest.raises(SystemExit, match="no text_frontend: it reads speech only"):
        main(["predict", wavs[0], "--text", "hello",
              "--train_config", str(trained_exp[0]),
              "--model_file", str(trained_exp[1])])  # fmt: skip


def test_predict_and_enhance_with_an_asr_model(capsys, text_zip, wavs, tmp_path):
    from espnet2_merit.asr.transcriber import Transcriber
    from espnet2_merit.utils.asr_checkpoint import make_ctc_checkpoint

    ctc = str(make_ctc_checkpoint(tmp_path / "ctc"))
    heard = Transcriber(ctc).transcribe(
        [soundfile.read(w, dtype="float32")[0] for w in wavs[:2]], 16000
    )
    text = tmp_path / "text"
    text.write_text(f"S1 {TEXTS[1]}\n")  # the other file: transcribed
    rows = _json(capsys, "predict", *wavs[:2], "--text_file", str(text),
                 "--asr_model", ctc, "--model", text_zip, "--json")  # fmt: skip
    assert [r["text"] for r in rows] == [heard[0], TEXTS[1]]
    out = tmp_path / "clean.wav"
    main(["enhance", wavs[0], "-o", str(out), "--asr_model", ctc, "--model", text_zip])
    assert len(soundfile.read(out)[0]) == len(soundfile.read(wavs[0])[0])


def test_export_onnx_takes_token_ids(capsys, text_exp, s2e, tmp_path):
    import onnxruntime

    from espnet2_merit.inference.onnx_export import TaskPath

    out = tmp_path / "ser.onnx"
    main(["export", "--onnx", str(out), "--seconds", "1",
          "--train_config", str(text_exp[0]), "--model_file", str(text_exp[1])])  # fmt: skip
    assert "text: 1 x S token ids" in capsys.readouterr().out
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["speech", "text", "text_lengths"]
    wav = np.random.default_rng(3).standard_normal((1, 16000)).astype(np.float32)
    torch_path = TaskPath(s2e.model, "ser").eval()
    outputs = []
    for t in TEXTS:  # other lengths than the traced one, some padded
        ids = torch.as_tensor(s2e.text_frontend.tokenizer(t))[None]
        padded = torch.nn.functional.pad(ids, (0, 4), value=-1)
        n = torch.tensor([ids.size(1)])
        got = session.run(None, {"speech": wav * 0.1, "text": padded.numpy(),
                                 "text_lengths": n.numpy()})[0]  # fmt: skip
        with torch.no_grad():
            ref = torch_path(torch.from_numpy(wav * 0.1), ids, n).numpy()
        np.testing.assert_allclose(got, ref, atol=1e-4)
        outputs.append(got)
    assert not np.allclose(outputs[0], outputs[1])  # the graph reads the text
