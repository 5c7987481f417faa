"""MSP-Podcast data preparation (egs2/msp_podcast/merit1/local/msp_podcast_data.py) on a tiny corpus in
MSP-Podcast's layout, written here."""

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from merit_testing import MSP_LOCAL, REPO, copy_recipe, load_local, noise_env

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.datadir import read_kaldi

msp = load_local("msp_podcast_data", MSP_LOCAL)

HEADER = "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"
# (code, speaker, split) per row; attributes follow from the row number.
ROWS = [
    ("A", "11", "Train"),
    ("S", "11", "Train"),
    ("H", "12", "Train"),
    ("N", "12", "Train"),
    ("N", "Unknown", "Train"),
    ("O", "11", "Train"),
    ("X", "12", "Train"),
    ("U", "12", "Train"),
    ("A", "21", "Development"),
    ("N", "21", "Development"),
    ("X", "21", "Development"),
    ("S", "31", "Test1"),
    ("H", "31", "Test1"),
    ("C", "31", "Test1"),
    ("N", "41", "Test2"),
    ("", "51", "Test3"),
    ("", "Unknown", "Test3"),
]


def _name(i: int) -> str:
    return f"MSP-PODCAST_{i:04d}_0001.wav"


def make_corpus(
    root: Path, rows=ROWS, header=HEADER, extra_col=False, seconds=0.1
) -> Path:
    """Audios/*.wav (``seconds`` of noise) and Labels/labels_consensus.csv; Test3
    rows have no labels at all (the release withholds them)."""
    (root / "Audios").mkdir(parents=True)
    (root / "Labels").mkdir()
    lines = [header + (",Extra" if extra_col else "")]
    rng = np.random.default_rng(0)
    for i, (code, spk, split) in enumerate(rows):
        wav = 0.1 * rng.standard_normal(int(16000 * seconds))
        soundfile.write(root / "Audios" / _name(i), wav, 16000)
        attrs = "" if not code else f"{1 + i % 6}.5,4.0,{2 + i % 5}.25"
        attrs = attrs or ",,"
        gender = "Female" if i % 2 else "Male"
        line = f"{_name(i)},{code},{attrs},{spk},{gender},{split}"
        lines.append(line + (",foo" if extra_col else ""))
    (root / "Labels" / "labels_consensus.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def corpus(tmp_path):
    return make_corpus(tmp_path / "msp")


def utt(i: int) -> str:
    return _name(i)[: -len(".wav")]


def test_four_classes(corpus, tmp_path, caplog):
    out = tmp_path / "data"
    with caplog.at_level(logging.INFO):
        summary = msp.prepare(corpus, out, classes=4)
    assert list(summary) == ["train", "dev", "test1", "test2", "test3"]
    assert summary["train"] == {
        "A": 1, "S": 1, "H": 1, "N": 2,
        "excluded:O": 1, "excluded:U": 1, "excluded:X": 1,
    }  # fmt: skip
    assert summary["dev"] == {"A": 1, "S": 0, "H": 0, "N": 1, "excluded:X": 1}
    assert summary["test1"]["excluded:C"] == 1
    assert (out / "emotion_list").read_text().split() == ["A", "S", "H", "N"]
    train = out / "train"
    emotion = read_kaldi(train / "emotion")
    assert emotion == {utt(0): "A", utt(1): "S", utt(2): "H", utt(3): "N", utt(4): "N"}
    assert list(emotion) == sorted(emotion)
    assert read_kaldi(train / "excluded") == {utt(5): "O", utt(6): "X", utt(7): "U"}
    for name in ("wav.scp", "utt2spk", "utt2gender", "emotion_attr"):
        assert list(read_kaldi(train / name)) == list(emotion), name
    wav = read_kaldi(train / "wav.scp")[utt(0)]
    assert Path(wav).is_absolute() and Path(wav) == corpus.resolve() / "Audios" / (
        _name(0)
    )
    assert read_kaldi(train / "emotion_attr")[utt(2)] == "3.5 4.0 4.25"
    assert read_kaldi(train / "utt2gender")[utt(1)] == "Female"
    assert "train: excluded 3 of 8 rows" in caplog.text
    assert "O 1, U 1, X 1" in caplog.text
    assert not list(out.rglob("*.tmp"))


def test_eight_classes_keep_u_and_c(corpus, tmp_path):
    out = tmp_path / "data"
    summary = msp.prepare(corpus, out, classes=8)
    assert summary["train"]["U"] == 1 and "excluded:U" not in summary["train"]
    assert summary["test1"]["C"] == 1
    assert read_kaldi(out / "train" / "excluded") == {utt(5): "O", utt(6): "X"}
    assert (out / "emotion_list").read_text().split() == list("ASHUFDCN")


def test_unknown_speaker_gets_own_id(corpus, tmp_path):
    msp.prepare(corpus, tmp_path / "data")
    spk = read_kaldi(tmp_path / "data" / "train" / "utt2spk")
    assert spk[utt(4)] == f"unk_{utt(4)}"
    assert spk[utt(0)] == "11"
    test3 = read_kaldi(tmp_path / "data" / "test3" / "utt2spk")
    assert test3[utt(16)] == f"unk_{utt(16)}"


def test_unlabelled_split(corpus, tmp_path, caplog):
    out = tmp_path / "data"
    (out / "test3").mkdir(parents=True)
    (out / "test3" / "emotion").write_text("stale A\n")  # from an earlier run
    with caplog.at_level(logging.INFO):
        summary = msp.prepare(corpus, out, splits="Test3")
    assert summary == {"test3": {"unlabelled": 2}}
    assert sorted(p.name for p in (out / "test3").iterdir()) == [
        "excluded", "utt2gender", "utt2spk", "wav.scp",
    ]  # fmt: skip
    assert list(read_kaldi(out / "test3" / "wav.scp")) == [utt(15), utt(16)]
    assert "test3: unlabelled split" in caplog.text
    assert "-" in msp.format_summary(summary, "ASHN")


def test_unlabelled_row_in_labelled_split_is_excluded(tmp_path, caplog):
    rows = [("A", "1", "Train"), ("", "1", "Train"), ("N", "2", "Train")]
    corpus = make_corpus(tmp_path / "msp", rows)
    with caplog.at_level(logging.INFO):
        summary = msp.prepare(corpus, tmp_path / "data")
    assert summary["train"]["excluded:none"] == 1
    assert read_kaldi(tmp_path / "data" / "train" / "excluded") == {utt(1): "none"}
    assert "have no EmoClass" in caplog.text


def test_extra_columns_and_bom(tmp_path):
    corpus = make_corpus(tmp_path / "msp", extra_col=True)
    csv_path = corpus / "Labels" / "labels_consensus.csv"
    csv_path.write_bytes(b"\xef\xbb\xbf" + csv_path.read_bytes())
    summary = msp.prepare(corpus, tmp_path / "data", splits="Train,Development")
    assert list(summary) == ["train", "dev"]
    assert not (tmp_path / "data" / "test1").exists()


def test_missing_wav_names_file_and_line(corpus, tmp_path):
    (corpus / "Audios" / _name(3)).unlink()
    (corpus / "Audios" / _name(12)).unlink()
    with pytest.raises(MeritInputError) as e:
        msp.prepare(corpus, tmp_path / "data")
    msg = str(e.value)
    assert "2 of 17 listed audio files are missing" in msg
    assert f"line 5: {corpus.resolve() / 'Audios' / _name(3)}" in msg
    assert "line 14: " in msg and _name(12) in msg
    # A missing file in a split not prepared does not matter.
    msp.prepare(corpus, tmp_path / "data", splits="Test3")


@pytest.mark.parametrize(
    "header",
    [
        "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender",  # no Split_Set
        "File,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set",
        "",
    ],
)
def test_bad_header(tmp_path, header):
    corpus = make_corpus(tmp_path / "msp", header=header)
    with pytest.raises(MeritInputError, match="expected " + HEADER) as e:
        msp.prepare(corpus, tmp_path / "data")
    assert "labels_consensus.csv" in str(e.value)


def test_missing_corpus_and_label_file(tmp_path):
    with pytest.raises(MeritInputError, match="no such directory"):
        msp.prepare(tmp_path / "nowhere", tmp_path / "data")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MeritInputError, match="labels_consensus.csv: no such file"):
        msp.prepare(tmp_path / "empty", tmp_path / "data")


@pytest.mark.parametrize(
    "attrs,field", [("8.5,4,4", "EmoAct"), ("4,abc,4", "EmoVal"), ("4,4,", "EmoDom")]
)
def test_bad_attribute_names_line_and_field(tmp_path, attrs, field):
    corpus = make_corpus(tmp_path / "msp", ROWS[:4])
    csv_path = corpus / "Labels" / "labels_consensus.csv"
    lines = csv_path.read_text().splitlines()
    lines[3] = f"{_name(2)},H,{attrs},12,Male,Train"
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MeritInputError, match=f"csv:4: {field} .* in \\[1, 7\\]"):
        msp.prepare(corpus, tmp_path / "data")


@pytest.mark.parametrize(
    "line,match",
    [
        (f"{_name(9)},Z,4,4,4,1,Male,Train", "EmoClass 'Z' is not an MSP-Podcast code"),
        (f"{_name(1)},A,4,4,4,1,Male,Train", "repeats line 3"),
        ("MSP-PODCAST_0009_0001.flac,A,4,4,4,1,Male,Train", "ending in .wav"),
        (f"{_name(9)},A,4,4,4,1 2,Male,Train", "SpkrID '1 2' contains white space"),
        (f"{_name(9)},A,4,4,4,1,Male,Train,x", "9 fields, the header has 8"),
    ],
)
def test_bad_rows(tmp_path, line, match):
    corpus = make_corpus(tmp_path / "msp", ROWS[:2])
    csv_path = corpus / "Labels" / "labels_consensus.csv"
    csv_path.write_text(csv_path.read_text() + line + "\n")
    with pytest.raises(MeritInputError, match=match):
        msp.prepare(corpus, tmp_path / "data")


def test_bad_splits(corpus, tmp_path):
    with pytest.raises(MeritInputError, match="unknown split 'Test4'"):
        msp.prepare(corpus, tmp_path / "data", splits="Train,Test4")
    corpus2 = make_corpus(tmp_path / "msp2", ROWS[:4])
    with pytest.raises(MeritInputError, match="no row with Split_Set Test1"):
        msp.prepare(corpus2, tmp_path / "data", splits="Train,Test1")


def test_cli(corpus, tmp_path, capsys):
    out = tmp_path / "data"
    msp.main(["--corpus_dir", str(corpus), "--outdir", str(out), "--classes", "4"])
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["split", "A", "S", "H", "N", "excluded", "total"]
    assert table[1].split() == ["train", "1", "1", "1", "2", "3", "5"]
    with pytest.raises(SystemExit, match="msp_podcast_data.py: error: .*nowhere"):
        msp.main(["--corpus_dir", str(tmp_path / "nowhere"), "--outdir", str(out)])


@pytest.mark.slow
def test_msp_podcast_recipe_stages_1_to_5(tmp_path):
    """The real recipe's run.sh and db.sh, on a generated MSP-format corpus and
    generated noise directories, through data preparation, simulation, formatting,
    filtering and labels."""
    corpus = make_corpus(tmp_path / "msp", seconds=1.5)
    recipe = copy_recipe(REPO / "egs2" / "msp_podcast" / "merit1", tmp_path / "r")
    env = dict(
        os.environ,
        MERIT_PYTHON=sys.executable,
        MSP_PODCAST=str(corpus),
        **noise_env(tmp_path / "noise"),
    )
    out = subprocess.run(
        ["./run.sh", "--stage", "1", "--stop_stage", "5", "--nj", "2",
         "--test_snrs", "0", "--min_sec", "1.0"],
        cwd=recipe, env=env, capture_output=True, text=True,
    )  # fmt: skip
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    raw = recipe / "dump" / "raw"
    for dset in ("train_sim", "dev_sim", "test1_seen_snr0", "test2_unseen_snr0"):
        assert (raw / dset / "wav.scp").is_file() and (raw / dset / "emotion").is_file()
    assert (raw / "emotion_list").read_text().split() == ["A", "S", "H", "N"]
    assert not (recipe / "data" / "test3" / "emotion").exists()  # labels withheld
    assert (raw / "test3" / "wav.scp").is_file()  # decoded as it is, for submission
    # Stage 1 ran as a job (train_cmd): its messages are in its log.
    assert "excluded" in (recipe / "dump" / "log" / "data_prep.log").read_text()
    # --local_data_opts replaces the recipe's: the corpus still comes from db.sh,
    # and the changed option prepares the data again (the stage-1 marker).
    out = subprocess.run(
        ["./run.sh", "--stage", "1", "--stop_stage", "1",
         "--local_data_opts", "--classes 8"],
        cwd=recipe, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert (recipe / "data" / "emotion_list").read_text().split() == list("ASHUFDCN")


def test_transcripts_become_text(corpus, tmp_path, caplog):
    """Transcripts/<utt>.txt (one per utterance, MSP-Podcast's layout) -> ``text``
    per split, whitespace collapsed; an utterance without one is left out and
    logged; without the folder no ``text`` (one of an earlier run removed)."""
    out = tmp_path / "data"
    (corpus / "Transcripts").mkdir()
    (corpus / "Transcripts" / f"{utt(0)}.txt").write_text("Hello  there,\nfriend.\n")
    (corpus / "Transcripts" / f"{utt(1)}.txt").write_text("Fine.\n")
    with caplog.at_level(logging.INFO):
        msp.prepare(corpus, out, classes=4)
    text = read_kaldi(out / "train" / "text")
    assert text[utt(0)] == "Hello there, friend." and text[utt(1)] == "Fine."
    wavs = read_kaldi(out / "train" / "wav.scp")
    assert set(text) == {utt(0), utt(1)} & set(wavs)
    assert "no (or an empty) transcript" in caplog.text
    shutil.rmtree(corpus / "Transcripts")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        msp.prepare(corpus, out, classes=4)
    assert not (out / "train" / "text").exists()
    assert "no text (transcripts)" in caplog.text
