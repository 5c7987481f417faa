"""merit_combine_data: a labelled set and unlabelled pools as one training set,
the pools' labels "-"."""

import pytest

from espnet2_merit.bin.merit_combine_data import main
from espnet2_merit.utils.datadir import read_kaldi


def _dir(root, name, utts, **files):
    d = root / name
    d.mkdir()
    (d / "wav.scp").write_text("".join(f"{u} /a/{u}.wav\n" for u in utts))
    for file, values in files.items():
        (d / file).write_text("".join(f"{u} {v}\n" for u, v in zip(utts, values)))
    return d


def test_pool_utterances_get_no_labels(tmp_path, caplog):
    train = _dir(
        tmp_path, "train", ["a1", "a2"], utt2spk=["s1", "s2"],
        emotion=["A", "N"], emotion_attr=["1 2 3", "4 5 6"], emotion_votes=["A:3", "-"],
    )  # fmt: skip
    pool = _dir(tmp_path, "test3", ["p1"], utt2spk=["s9"], emotion=["H"])
    out = tmp_path / "train_semi"
    main(["--unlabelled", str(pool), str(train), str(out)])
    assert list(read_kaldi(out / "wav.scp")) == ["a1", "a2", "p1"]
    assert read_kaldi(out / "utt2spk") == {"a1": "s1", "a2": "s2", "p1": "s9"}
    assert read_kaldi(out / "emotion") == {"a1": "A", "a2": "N", "p1": "-"}
    assert read_kaldi(out / "emotion_attr")["p1"] == "-"
    assert read_kaldi(out / "emotion_votes") == {"a1": "A:3", "a2": "-", "p1": "-"}
    assert "the pool's labels are left out" in caplog.text


@pytest.mark.parametrize(
    "pool_files, message",
    [
        ({"utts": ["a1"]}, "utterance 'a1' is in both"),
        ({"utts": ["p1"], "files": {}}, "has no utt2spk"),
    ],
)
def test_errors_name_the_sets(tmp_path, pool_files, message):
    train = _dir(tmp_path, "train", ["a1"], utt2spk=["s1"], emotion=["A"])
    files = pool_files.get("files", {"utt2spk": ["s"]})
    pool = _dir(tmp_path, "pool", pool_files["utts"], **files)
    with pytest.raises(SystemExit, match=message):
        main(["--unlabelled", str(pool), str(train), str(tmp_path / "out")])
