"""Speech2EmotionEnhance with a text frontend: transcripts given or transcribed
by an ASR model, padded like training's batches, errors, decoding a data dir with
its Kaldi ``text``, and a packed model that carries its text encoder."""

import json
import shutil
import zipfile

import numpy as np
import pytest
import soundfile
import torch
import yaml
from merit_testing import SPEECH_TEXT_TINY

from espnet2_merit.bin.merit_inference import main as inference_main
from espnet2_merit.errors import MeritInputError
from espnet2_merit.inference.speech2emotion import TEXT_PAD, Speech2EmotionEnhance
from espnet2_merit.tasks.builder import read_config
from espnet2_merit.tasks.merit import MeritTask
from espnet2_merit.utils.datadir import read_kaldi
from espnet2_merit.utils.packing import pack_model
from espnet2_merit.utils.synthetic import voice

FS = 16000
# Transcripts of different token lengths (the tiny vocabulary's words).
TEXTS = ["hello", "what a good day it was today really", "no it was not the bus"]


@pytest.fixture(scope="module")
def s2e(text_exp):
    return Speech2EmotionEnhance(*text_exp, batch_size=4)


@pytest.fixture(scope="module")
def ctc(tmp_path_factory):
    from espnet2_merit.utils.asr_checkpoint import make_ctc_checkpoint

    return make_ctc_checkpoint(tmp_path_factory.mktemp("asr") / "ctc")


def _speech(seconds, seed=0):
    rng = np.random.default_rng(seed)
    wav = voice("H", seconds, FS, rng) + 0.05 * rng.standard_normal(int(seconds * FS))
    return wav.astype(np.float32)


def _assert_same(a, b, atol=1e-5):
    np.testing.assert_allclose(a.probs, b.probs, atol=atol)
    np.testing.assert_allclose(a.enhanced, b.enhanced, atol=atol)
    for task in a.routes:
        np.testing.assert_array_equal(a.routes[task].experts, b.routes[task].experts)
    assert a.text == b.text


def test_batch_equals_one_by_one_with_padded_transcripts(s2e, monkeypatch):
    wavs = [_speech(s, i) for i, s in enumerate((1.0, 1.6, 0.7))]
    lengths = [len(s2e.text_frontend.tokenizer(t)) for t in TEXTS]
    assert len(set(lengths)) == 3  # the batch pads the token ids
    seen = []
    inference = s2e.model.inference
    monkeypatch.setattr(
        s2e.model,
        "inference",
        lambda *a, **kw: seen.append(kw) or inference(*a, **kw),
    )
    batched = s2e.batch(wavs, texts=TEXTS)
    text, text_lengths = seen[0]["text"], seen[0]["text_lengths"]
    assert text.dtype == torch.long and text_lengths.tolist() == lengths
    assert (text[0, lengths[0] :] == TEXT_PAD).all()  # padded as training pads
    for i, (w, t) in enumerate(zip(wavs, TEXTS)):
        single = s2e(w, text=t)
        _assert_same(batched[i], single)
        assert single.text == t and single.to_dict()["text"] == t
    # The transcript is read: another one changes the prediction.
    other = s2e(wavs[0], text=TEXTS[1])
    assert not np.allclose(other.probs, batched[0].probs)


def test_padding_is_the_collate_functions(make_args):
    args = make_args(SPEECH_TEXT_TINY)
    assert MeritTask.build_collate_fn(args, train=False).int_pad_value == TEXT_PAD


def test_every_window_of_a_long_recording_reads_the_transcript(text_exp):
    s2e = Speech2EmotionEnhance(*text_exp, window_sec=1.0, overlap_sec=0.2)
    res = s2e(_speech(3.0), text=TEXTS[2])
    assert len(res.windows) > 1 and res.text == TEXTS[2]


def test_transcript_errors(s2e, text_exp, trained_exp):
    wav = _speech(1.0)
    with pytest.raises(MeritInputError, match="recording 0: no transcript.*asr_model"):
        s2e(wav)
    with pytest.raises(MeritInputError, match="recording 1: no transcript"):
        s2e.batch([wav, wav], texts=["hello", None])
    with pytest.raises(MeritInputError, match="recording 1: its transcript is empty"):
        s2e.batch([wav, wav], texts=["hello", "  "])
    with pytest.raises(MeritInputError, match=r"one transcript per recording \(2\), got 1"):  # fmt: skip
        s2e.batch([wav, wav], texts=["hello"])
    with pytest.raises(MeritInputError, match=r"\(1\), got one string"):
        s2e.batch([wav], texts="hello")
    with pytest.raises(MeritInputError, match="recording 0: its transcript is a int"):
        s2e.batch([wav], texts=[3])
    speech_only = Speech2EmotionEnhance(*trained_exp)
    with pytest.raises(MeritInputError, match="no text_frontend: it reads speech only"):
        speech_only(wav, text="hello")
    with pytest.raises(MeritInputError, match="asr_model='x': this model has no text"):
        Speech2EmotionEnhance(*trained_exp, asr_model="x")
    with pytest.raises(MeritInputError, match="asr_conf is given without asr_model"):
        Speech2EmotionEnhance(*text_exp, asr_conf={"batch_size": 2})


def test_asr_model_transcribes_recordings_without_text(text_exp, s2e, ctc):
    from espnet2_merit.asr.transcriber import Transcriber

    asr = Speech2EmotionEnhance(
        *text_exp, asr_model=str(ctc), asr_conf={"local_files_only": True}
    )
    wavs = [_speech(1.2, 4), _speech(0.9, 5)]
    heard = Transcriber(str(ctc), local_files_only=True).transcribe(wavs, FS)
    assert all(h.strip() for h in heard)  # random weights: gibberish, not empty
    res = asr.batch(wavs, texts=[None, "hello"])  # only the first is transcribed
    assert [r.text for r in res] == [heard[0], "hello"]
    _assert_same(res[0], s2e(wavs[0], text=heard[0]))
    assert asr(wavs[1]).text == heard[1]


# ------------------------------------------------------------------ decoding
def _decode(text_exp, data, out, extra=()):
    config, model_file = text_exp
    inference_main([
        "--train_config", str(config), "--model_file", str(model_file),
        *data, "--output_dir", str(out), "--batch_size", "3", *extra,
    ])  # fmt: skip


def _data(d, text=None):
    opts = ["--data_path_and_name_and_type", f"{d / 'wav.scp'},speech,sound"]
    if text is not None:
        opts += ["--data_path_and_name_and_type", f"{text},text,text"]
    return opts


def test_decode_reads_the_text_file_and_writes_the_transcripts(
    text_exp, data_dirs, tmp_path
):
    _, valid = data_dirs
    out = tmp_path / "out"
    _decode(text_exp, _data(valid, valid / "text"), out)
    given = read_kaldi(valid / "text")
    assert read_kaldi(out / "text") == {k: " ".join(v.split()) for k, v in given.items()}  # fmt: skip
    assert "text" in json.loads((out / "outputs.json").read_text())["files"]
    assert set(read_kaldi(out / "emotion")) == set(given)
    # The same as the Python call with each transcript.
    s2e = Speech2EmotionEnhance(*text_exp)
    key = next(iter(given))
    wav = soundfile.read(read_kaldi(valid / "wav.scp")[key], dtype="float32")[0]
    assert read_kaldi(out / "emotion")[key] == s2e(wav, text=given[key]).label


def test_decode_errors_name_the_file_and_utterance(
    text_exp, trained_exp, data_dirs, tmp_path
):
    _, valid = data_dirs
    lines = (valid / "text").read_text().splitlines()
    partial = tmp_path / "text"
    partial.write_text("\n".join(lines[:2] + lines[3:]) + "\n")
    missing = lines[2].split()[0]
    with pytest.raises(SystemExit, match=rf"{partial}: no transcript for utterance '{missing}'"):  # fmt: skip
        _decode(text_exp, _data(valid, partial), tmp_path / "a")
    with pytest.raises(SystemExit, match="reads transcripts.*asr_model"):
        _decode(text_exp, _data(valid), tmp_path / "b")
    with pytest.raises(SystemExit, match="expected '<wav.scp>,speech,sound' or"):
        _decode(text_exp, _data(valid) + ["--data_path_and_name_and_type",
                                          f"{partial},words,text"], tmp_path / "c")  # fmt: skip
    with pytest.raises(SystemExit, match="no text_frontend: it reads speech only"):
        _decode(trained_exp, _data(valid, valid / "text"), tmp_path / "d")
    empty = tmp_path / "empty_line"
    empty.write_text("\n".join(lines[:1] + [missing] + lines[3:]) + "\n")
    with pytest.raises(SystemExit, match=rf"{empty}:2: expected '<key> <value>'"):
        _decode(text_exp, _data(valid, empty), tmp_path / "e")


def test_decode_transcribes_what_the_text_file_lacks(
    text_exp, data_dirs, tmp_path, ctc
):
    _, valid = data_dirs
    lines = (valid / "text").read_text().splitlines()
    partial = tmp_path / "text"
    partial.write_text("\n".join(lines[1:]) + "\n")
    out = tmp_path / "out"
    _decode(text_exp, _data(valid, partial), out,
            ["--asr_model", str(ctc), "--asr_conf", "local_files_only=true"])  # fmt: skip
    written, given = read_kaldi(out / "text"), read_kaldi(partial)
    first = lines[0].split()[0]
    assert set(written) == set(read_kaldi(valid / "wav.scp"))
    assert written[first] != read_kaldi(valid / "text")[first]  # the ASR model's
    assert all(written[k] == " ".join(v.split()) for k, v in given.items())


# ------------------------------------------------------------------- packing
def test_packed_text_model_runs_elsewhere_after_its_files_are_gone(
    text_exp, s2e, tmp_path, monkeypatch
):
    """The zip carries the local RoBERTa folder (and the SSL checkpoint): the
    model loads from another directory, offline, after the originals are
    deleted, with identical outputs."""
    config, model_file = text_exp
    conf = yaml.safe_load(config.read_text())
    own = tmp_path / "own"
    own.mkdir()
    shutil.copytree(conf["text_frontend_conf"]["model_name_or_path"], own / "roberta")
    shutil.copy(conf["frontend_conf"]["path_or_url"], own / "wavlm.pt")
    conf["text_frontend_conf"]["model_name_or_path"] = str(own / "roberta")
    conf["frontend_conf"]["path_or_url"] = str(own / "wavlm.pt")
    (own / "config.yaml").write_text(yaml.safe_dump(conf))
    shutil.copy(model_file, own / "model.pth")
    zip_path = pack_model(own / "config.yaml", own / "model.pth", tmp_path / "m.zip")
    shutil.rmtree(own)

    names = zipfile.ZipFile(zip_path).namelist()
    assert "data/text_frontend_conf/roberta/config.json" in names, names
    assert not any(n.startswith("/") for n in names)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = Speech2EmotionEnhance.from_pretrained(
        str(zip_path), cachedir=tmp_path / "cache", batch_size=4
    )
    folder = loaded.args.text_frontend_conf["model_name_or_path"]
    assert folder.startswith(str(tmp_path / "cache"))
    wav = _speech(1.3, 5)
    a, b = s2e(wav, text=TEXTS[1]), loaded(wav, text=TEXTS[1])
    np.testing.assert_array_equal(a.probs, b.probs)
    np.testing.assert_array_equal(a.enhanced, b.enhanced)


def test_a_hub_text_encoder_name_is_kept(text_exp, tmp_path):
    """``owner/name`` is a hub name, not a missing relative folder: packed and
    loaded as it is."""
    config, model_file = text_exp
    conf = yaml.safe_load(config.read_text())
    conf["text_frontend_conf"]["model_name_or_path"] = "FacebookAI/roberta-large"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(conf))
    zip_path = pack_model(tmp_path / "config.yaml", model_file, tmp_path / "m.zip")
    packed = yaml.safe_load(zipfile.ZipFile(zip_path).read("config.yaml"))
    assert packed["text_frontend_conf"]["model_name_or_path"] == (
        "FacebookAI/roberta-large"
    )
    args = read_config(tmp_path / "config.yaml")
    assert args.text_frontend_conf["model_name_or_path"] == "FacebookAI/roberta-large"
