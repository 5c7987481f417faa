"""MSP-Podcast's individual annotations (Labels/labels_detailed.csv) in stage 1
(egs2/msp_podcast/merit1/local/msp_podcast_data.py): ``read_votes`` on files in the
corpus's layouts (1.11 and later, 1.6) written here, and ``emotion_votes``."""

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile
from merit_testing import MSP_LOCAL, load_local

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.datadir import read_kaldi

msp = load_local("msp_podcast_data", MSP_LOCAL)

CONSENSUS = "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"
# (code, split) of the consensus rows; utterance i is MSP-PODCAST_0001_000<i>.
CODES = [
    ("N", "Train"),
    ("H", "Train"),
    ("A", "Train"),
    ("O", "Train"),
    ("S", "Train"),
    ("N", "Development"),
    ("", "Test3"),
]
HEADER_111 = "FileName,EmoDetail"
HEADER_16 = "FileName,Workers,EmoClass_Major,EmoClass_Second,EmoAct,EmoVal,EmoDom"
# Rows in the 1.11+ layout, as the release writes them.
DETAILED_111 = [
    '{0},"WORKER00014; Neutral; Concerned,Frustrated; A:3.0; V:4.0; D:4.0;"',
    '{0},"WORKER00020; Neutral; ; A:4.0; V:4.0; D:3.0;"',  # empty secondary
    '{0},"WORKER00031; Other-Curious; Calm; A:3.0; V:5.0; D:4.0;"',
    '{1},"WORKER00014; Happy; A:5.0; V:6.0; D:4.0;"',  # no secondary field
    '{1},"WORKER00020; Happy; Excited; A:6.0; V:6.0; D:5.0;"',
    '{1},"WORKER00031; ; Amused; A:5.0; V:5.0; D:4.0;"',  # missing primary
    '{1},"WORKER00044; Surprise; ; A:5.0; V:5.0; D:4.0;"',
    '{2},"WORKER00014; Angry; Annoyed; A:6.0; V:2.0; D:6.0;"',
    '{2},"WORKER00020; Contempt; ; A:5.0; V:2.0; D:5.0;"',
    '{2},"WORKER00031; Angry; A:6.0; V:1.0; D:6.0;"',
    '{3},"WORKER00014; Other; ; A:4.0; V:4.0; D:4.0;"',
    '{4},"WORKER00020; ; A:2.0; V:3.0; D:3.0;"',  # only a missing vote
    '{5},"WORKER00014; Neutral; Calm; A:4.0; V:4.0; D:4.0;"',
    '{5},"WORKER00044; Sad; ; A:3.0; V:3.0; D:4.0;"',
    'MSP-PODCAST_0099_0001.wav,"WORKER00014; Sad; ; A:2.0; V:2.0; D:3.0;"',
    'MSP-PODCAST_0099_0001.wav,"WORKER00020; Fear; ; A:2.0; V:2.0; D:3.0;"',
]
# The votes these rows give (the file not in the consensus file included).
VOTES_111 = {
    "MSP-PODCAST_0001_0000": Counter(N=2, O=1),
    "MSP-PODCAST_0001_0001": Counter(H=2, U=1),
    "MSP-PODCAST_0001_0002": Counter(A=2, C=1),
    "MSP-PODCAST_0001_0003": Counter(O=1),
    "MSP-PODCAST_0001_0004": Counter(),
    "MSP-PODCAST_0001_0005": Counter(N=1, S=1),
    "MSP-PODCAST_0099_0001": Counter(S=1, F=1),
}


def _name(i: int) -> str:
    return f"MSP-PODCAST_0001_{i:04d}.wav"


def _utt(i: int) -> str:
    return _name(i)[: -len(".wav")]


def write_detailed(root: Path, lines, header=HEADER_111) -> Path:
    path = root / "Labels" / "labels_detailed.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [_name(i) for i in range(len(CODES))]
    path.write_text("\n".join([header, *(x.format(*names) for x in lines)]) + "\n")
    return path


def make_corpus(root: Path, detailed=DETAILED_111) -> Path:
    """Audios/, labels_consensus.csv of ``CODES`` and (unless None) the detailed
    rows."""
    (root / "Audios").mkdir(parents=True)
    lines = [CONSENSUS]
    for i, (code, split) in enumerate(CODES):
        soundfile.write(root / "Audios" / _name(i), np.zeros(1600), 16000)
        attrs = "4.0,4.0,4.0" if code else ",,"
        lines.append(f"{_name(i)},{code},{attrs},1,Female,{split}")
    (root / "Labels").mkdir()
    (root / "Labels" / "labels_consensus.csv").write_text("\n".join(lines) + "\n")
    if detailed is not None:
        write_detailed(root, detailed)
    return root


def test_read_votes_111(tmp_path):
    path = write_detailed(tmp_path, DETAILED_111)
    votes = msp.read_votes(path)
    assert votes.counts == VOTES_111
    assert votes.missing == Counter({_utt(1): 1, _utt(4): 1})
    assert votes.rows(_utt(1)) == 4 and votes.rows(_utt(4)) == 1
    assert votes.rows("absent") == 0
    assert msp.format_votes(votes.counts[_utt(0)]) == "N:2 O:1"
    assert msp.format_votes(votes.counts[_utt(2)]) == "A:2 C:1"  # ALL_CODES order
    assert msp.format_votes(votes.counts[_utt(4)]) == "-"


def test_read_votes_16_and_bom(tmp_path):
    lines = [
        '{0},WORKER00014,Neutral,"Concerned,Frustrated",3.0,4.0,4.0',
        "{0},WORKER00020,Other-Curious,,4.0,4.0,3.0",
        "{1},WORKER00014,Happy,,5.0,6.0,4.0",
        "{1},WORKER00020,,,5.0,5.0,4.0",  # missing primary
        "{2},WORKER00031,Disgust,Annoyed,5.0,2.0,5.0",
    ]
    path = write_detailed(tmp_path, lines, HEADER_16)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    votes = msp.read_votes(path)
    assert votes.counts == {
        _utt(0): Counter(N=1, O=1),
        _utt(1): Counter(H=1),
        _utt(2): Counter(D=1),
    }
    assert votes.missing == Counter({_utt(1): 1})


@pytest.mark.parametrize(
    "line,match",
    [
        ('{0},"WORKER00014; Neutral; Calm; V:4.0; D:4.0;"', "csv:3: EmoDetail .*A:"),
        ('{0},"WORKER00014; Neutral"', "csv:3: EmoDetail"),
        ('{0},"A:3.0; V:4.0; D:4.0;"', "csv:3: EmoDetail"),  # no worker
        ('{0},"W1; Neutral; Calm; x; A:3.0; V:4.0; D:4.0;"', "csv:3: EmoDetail"),
        ("{0},WORKER00014; Neutral; Calm, Sad; A:3.0;", "csv:3: 3 fields, .* has 2"),
        ("{0}", "csv:3: 1 fields, the header has 2"),
        ('MSP-PODCAST_0001_0000.flac,"W1; Sad; A:3.0; V:4.0; D:4.0;"', "csv:3: .*wav"),
        ('{0},"W1; Joyful; ; A:3.0; V:4.0; D:4.0;"', "csv:3: primary emotion 'Joyful'"),
        ('{0},"W1; neutral; ; A:3.0; V:4.0; D:4.0;"', "csv:3: primary .*'neutral'"),
    ],
)
def test_bad_rows_name_the_line(tmp_path, line, match):
    path = write_detailed(tmp_path, [DETAILED_111[0], line])
    with pytest.raises(MeritInputError, match=match):
        msp.read_votes(path)


def test_bad_primary_16(tmp_path):
    path = write_detailed(tmp_path, ["{0},WORKER1,Joy,,4,4,4"], HEADER_16)
    with pytest.raises(MeritInputError, match="csv:2: primary emotion 'Joy'"):
        msp.read_votes(path)


@pytest.mark.parametrize(
    "header", ["FileName,EmoClass", HEADER_16 + ",Extra", "FileName", ""]
)
def test_bad_header_names_both_layouts(tmp_path, header):
    path = write_detailed(tmp_path, [], header)
    with pytest.raises(MeritInputError) as e:
        msp.read_votes(path)
    msg = str(e.value)
    assert "labels_detailed.csv: header " + (header or "(empty file)") in msg
    assert HEADER_111 in msg and HEADER_16 in msg


def test_stage_1_writes_votes(tmp_path, caplog):
    corpus = make_corpus(tmp_path / "msp")
    out = tmp_path / "data"
    with caplog.at_level(logging.INFO):
        msp.prepare(corpus, out, classes=4)
    train = read_kaldi(out / "train" / "emotion_votes")
    # O (utterance 3) is excluded from train, so from its votes too.
    assert list(train) == list(read_kaldi(out / "train" / "emotion"))
    assert train == {
        _utt(0): "N:2 O:1",
        _utt(1): "H:2 U:1",
        _utt(2): "A:2 C:1",
        _utt(4): "-",  # only a missing vote
    }
    assert read_kaldi(out / "dev" / "emotion_votes") == {_utt(5): "S:1 N:1"}
    assert not (out / "test3" / "emotion_votes").exists()  # unlabelled
    assert "2 rows name 1 files that Labels/labels_consensus.csv does not" in (
        caplog.text
    )
    assert "MSP-PODCAST_0099_0001" in caplog.text
    assert "train: emotion_votes from 11 annotator rows of 4 utterances; 2 rows " in (
        caplog.text
    )
    assert "train: 1 utterances have only missing votes" in caplog.text
    assert "WARNING" in caplog.text


def test_utterance_without_rows_gets_dash(tmp_path, caplog):
    corpus = make_corpus(tmp_path / "msp", DETAILED_111[:3])
    with caplog.at_level(logging.INFO):
        msp.prepare(corpus, tmp_path / "data", splits="Train")
    votes = read_kaldi(tmp_path / "data" / "train" / "emotion_votes")
    assert votes == {_utt(0): "N:2 O:1", _utt(1): "-", _utt(2): "-", _utt(4): "-"}
    assert "train: 3 utterances have no row in Labels/labels_detailed.csv" in (
        caplog.text
    )


def test_no_detailed_file_removes_stale_votes(tmp_path, caplog):
    corpus = make_corpus(tmp_path / "msp", detailed=None)
    out = tmp_path / "data"
    for name in ("train", "test3"):
        (out / name).mkdir(parents=True)
        (out / name / "emotion_votes").write_text("stale N:1\n")
    with caplog.at_level(logging.INFO):
        msp.prepare(corpus, out)
    assert not list(out.rglob("emotion_votes"))
    assert (out / "train" / "emotion").is_file()
    assert "labels_detailed.csv: no such file, so no emotion_votes" in caplog.text


def test_bad_detailed_file_fails_before_writing(tmp_path):
    corpus = make_corpus(tmp_path / "msp", DETAILED_111 + ['{0},"W1; Joy; A:1;"'])
    with pytest.raises(MeritInputError, match=r"labels_detailed.csv:18: primary"):
        msp.prepare(corpus, tmp_path / "data")
    assert not (tmp_path / "data").exists()
