"""CREMA-D data preparation (egs2/crema_d/merit1/local/crema_d_data.py) on the
recipe's miniature in the release's layout (local/make_mini_crema_d.py)."""

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile
from merit_testing import REPO, copy_recipe, load_local

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.datadir import read_kaldi

CREMA_LOCAL = "egs2/crema_d/merit1/local"
crema = load_local("crema_d_data", CREMA_LOCAL)
mini = load_local("make_mini_crema_d", CREMA_LOCAL)

ACTORS = 6
# Files per actor and class: ANG DIS FEA HAP SAD 3 (IEO LO/MD/HI) + 2 (two other
# sentences, XX); NEU 1 (IEO_NEU_XX) + 2.
PER_ACTOR = {"A": 5, "S": 5, "H": 5, "F": 5, "D": 5, "N": 3}
# 6 actors, dev 0.1 and test 0.2: 1 actor each, 4 for train.
SET_ACTORS = {"train": 4, "dev": 1, "test": 1}


@pytest.fixture(scope="module")
def mini_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("crema") / "mini"
    mini.generate(out, actors=ACTORS, seed=0)
    return out


@pytest.fixture
def corpus(mini_corpus, tmp_path) -> Path:
    """A copy of the miniature that a test may damage."""
    return Path(shutil.copytree(mini_corpus, tmp_path / "corpus"))


def _wavs(root: Path):
    return sorted(p.name for p in (root / "AudioWAV").iterdir())


def _tree(d: Path):
    return {
        p.relative_to(d).as_posix(): p.read_bytes() for p in d.rglob("*") if p.is_file()
    }


def test_miniature_layout(mini_corpus, tmp_path):
    names = _wavs(mini_corpus)
    assert len(names) == ACTORS * mini.FILES_PER_ACTOR == ACTORS * 28
    clips = [crema.parse_name(mini_corpus / "AudioWAV" / n) for n in names]
    assert len({c.actor for c in clips}) == ACTORS
    assert Counter(c.emotion for c in clips) == {
        e: ACTORS * PER_ACTOR[crema.EMOTIONS[e]] for e in crema.EMOTIONS
    }
    # As in the release: only IEO has LO/MD/HI, and neutral is XX only.
    assert all(c.level == "XX" for c in clips if c.sentence != "IEO")
    assert all(c.level == "XX" for c in clips if c.emotion == "NEU")
    assert {c.level for c in clips} == set(crema.LEVELS)
    info = soundfile.info(str(mini_corpus / "AudioWAV" / names[0]))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    csv_text = (mini_corpus / "VideoDemographics.csv").read_text()
    lines = csv_text.splitlines()
    assert lines[0] == '"ActorID","Age","Sex","Race","Ethnicity"'
    assert len(lines) == ACTORS + 1 and lines[1].split(",")[0].isdigit()
    sex = crema.read_demographics(mini_corpus / "VideoDemographics.csv")
    assert Counter(sex.values()) == {"Male": 3, "Female": 3}
    # A seed gives the same files; a re-run with the same options skips.
    a, b = tmp_path / "a", tmp_path / "b"
    mini.generate(a, actors=2, seed=3)
    mini.generate(b, actors=2, seed=3)
    assert _tree(a) == _tree(b)
    stamp = (a / ".done").stat().st_mtime_ns
    mini.generate(a, actors=2, seed=3)
    assert (a / ".done").stat().st_mtime_ns == stamp
    mini.generate(a, actors=3, seed=3)  # other options regenerate
    assert len(_wavs(a)) == 3 * mini.FILES_PER_ACTOR


def _check_sets(out: Path, corpus: Path, class_set, summary):
    sex = crema.read_demographics(corpus / "VideoDemographics.csv")
    split = dict(
        line.split("\t") for line in (out / "actor_split.txt").read_text().splitlines()
    )
    assert sorted(split) == sorted(sex)
    seen_utts, seen_actors = set(), set()
    for name in crema.SETS:
        d = out / name
        emotion = read_kaldi(d / "emotion")
        for f in ("wav.scp", "utt2spk", "utt2gender"):
            assert list(read_kaldi(d / f)) == list(emotion), f
        spk = read_kaldi(d / "utt2spk")
        actors = set(spk.values())
        assert len(actors) == SET_ACTORS[name] == summary[name]["actors"]
        assert all(split[a] == name for a in actors)
        assert not actors & seen_actors  # actor-disjoint
        seen_actors |= actors
        for utt, wav in read_kaldi(d / "wav.scp").items():
            assert Path(wav).is_absolute() and Path(wav).is_file()
            assert Path(wav) == corpus.resolve() / "AudioWAV" / f"{utt}.wav"
            assert spk[utt] == utt[:4]
        gender = read_kaldi(d / "utt2gender")
        assert all(gender[u] == sex[spk[u]] for u in emotion)
        for code in class_set:
            n = sum(1 for c in emotion.values() if c == code)
            assert n == summary[name][code] == SET_ACTORS[name] * PER_ACTOR[code]
        excluded = read_kaldi(d / "excluded")
        seen_utts |= set(emotion) | set(excluded)
    assert seen_utts == {n[: -len(".wav")] for n in _wavs(corpus)}
    assert (out / "emotion_list").read_text().split() == list(class_set)
    assert not list(out.rglob("*.tmp"))


def test_four_classes(mini_corpus, tmp_path, caplog):
    out = tmp_path / "data"
    with caplog.at_level(logging.INFO):
        summary = crema.prepare(mini_corpus, out, classes=4)
    assert list(summary) == ["train", "dev", "test"]
    _check_sets(out, mini_corpus, "ASHN", summary)
    for name, n in SET_ACTORS.items():
        assert summary[name] == {
            "actors": n, "A": 5 * n, "S": 5 * n, "H": 5 * n, "N": 3 * n,
            "excluded:D": 5 * n, "excluded:F": 5 * n,
        }  # fmt: skip
        excluded = read_kaldi(out / name / "excluded")
        assert Counter(excluded.values()) == {"D": 5 * n, "F": 5 * n}
        assert all(u.split("_")[2] in ("DIS", "FEA") for u in excluded)
    assert "train: excluded 40 of 112 files: D 20, F 20" in caplog.text
    table = crema.format_summary(summary, "ASHN").splitlines()
    assert table[0].split() == [
        "set",
        "actors",
        "A",
        "S",
        "H",
        "N",
        "excluded",
        "total",
    ]
    assert table[1].split() == ["train", "4", "20", "20", "20", "12", "40", "72"]


def test_six_classes(mini_corpus, tmp_path):
    out = tmp_path / "data"
    summary = crema.prepare(mini_corpus, out, classes=6)
    _check_sets(out, mini_corpus, "ASHFDN", summary)
    assert summary["train"] == {
        "actors": 4, "A": 20, "S": 20, "H": 20, "F": 20, "D": 20, "N": 12
    }  # fmt: skip
    for name in crema.SETS:
        assert read_kaldi(out / name / "excluded") == {}
    emotion = read_kaldi(out / "train" / "emotion")
    assert {u.split("_")[2]: c for u, c in emotion.items()} == {
        "ANG": "A", "SAD": "S", "HAP": "H", "FEA": "F", "DIS": "D", "NEU": "N"
    }  # fmt: skip


def test_split_reproducible_from_seed_and_split_file(mini_corpus, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    crema.prepare(mini_corpus, a, seed=0)
    crema.prepare(mini_corpus, b, seed=0)
    assert _tree(a) == _tree(b)
    splits = set()
    for seed in range(6):
        crema.prepare(mini_corpus, tmp_path / f"s{seed}", seed=seed)
        splits.add((tmp_path / f"s{seed}" / "actor_split.txt").read_text())
    assert len(splits) > 1  # the seed draws the split
    # The written split file gives the same directories, whatever the seed.
    c = tmp_path / "c"
    crema.prepare(mini_corpus, c, seed=5, split_file=a / "actor_split.txt")
    assert _tree(c) == _tree(a)
    # Read from the output directory itself (a re-run of stage 1).
    crema.prepare(mini_corpus, c, split_file=c / "actor_split.txt")
    assert _tree(c) == _tree(a)


def test_split_balances_sex():
    actors = [str(a) for a in range(1001, 1092)]
    sex = {a: "Male" if i < 48 else "Female" for i, a in enumerate(actors)}
    split = crema.draw_split(actors, 0, 0.1, 0.2, sex)
    count = Counter((split[a], sex[a]) for a in actors)
    assert count["test", "Male"] + count["test", "Female"] == 18
    assert count["dev", "Male"] + count["dev", "Female"] == 9
    for name in crema.SETS:  # the corpus's 48:43, within one actor
        n = count[name, "Male"] + count[name, "Female"]
        assert abs(count[name, "Male"] - n * 48 / 91) <= 1, name
    assert crema.draw_split(actors, 0, 0.1, 0.2, sex) == split
    assert crema.draw_split(actors, 1, 0.1, 0.2, sex) != split
    plain = crema.draw_split(actors, 0, 0.1, 0.2)
    assert Counter(plain.values()) == {"train": 64, "test": 18, "dev": 9}


def test_without_demographics(corpus, tmp_path, caplog):
    out = tmp_path / "data"
    crema.prepare(corpus, out)
    assert (out / "train" / "utt2gender").is_file()
    (corpus / "VideoDemographics.csv").unlink()
    with caplog.at_level(logging.INFO):
        summary = crema.prepare(corpus, out)
    assert "VideoDemographics.csv: no such file, so no utt2gender" in caplog.text
    for name in crema.SETS:  # the one of the first run is removed
        assert not (out / name / "utt2gender").exists()
        assert summary[name]["actors"] == SET_ACTORS[name]
    with pytest.raises(MeritInputError, match="--demographics .*nowhere.csv: no such"):
        crema.prepare(corpus, out, demographics=tmp_path / "nowhere.csv")


def test_unusable_audio_is_excluded_and_counted(corpus, tmp_path, caplog):
    audio = corpus / "AudioWAV"
    names = _wavs(corpus)
    crema.prepare(corpus, tmp_path / "d0")  # the split of the intact corpus
    split_file = tmp_path / "split.txt"
    split_file.write_text(
        (tmp_path / "d0" / "actor_split.txt").read_text() + "1076\ttrain\n"
    )
    (audio / names[0]).write_bytes(b"")  # zero bytes
    (audio / names[1]).write_bytes(b"RIFF\x00\x00not a wav at all")
    soundfile.write(audio / names[2], np.zeros(16000), 16000, subtype="PCM_16")
    soundfile.write(audio / names[3], np.zeros(0), 16000, subtype="PCM_16")
    (audio / names[5]).unlink()
    (audio / names[5]).symlink_to(tmp_path / "nowhere.wav")  # a broken link
    # The release's README: 1076_MTI_SAD_XX has no audio (not empty on disk).
    shutil.copy(audio / names[4], audio / "1076_MTI_SAD_XX.wav")
    with open(corpus / "VideoDemographics.csv", "a") as f:
        f.write('1076,25,"Female","Caucasian","Not Hispanic"\n')
    out = tmp_path / "data"
    with caplog.at_level(logging.INFO):
        summary = crema.prepare(corpus, out, classes=6, split_file=split_file)
    reasons = {
        names[0]: "empty",
        names[1]: "unreadable",
        names[2]: "silent",
        names[3]: "empty",
        names[5]: "unreadable",
        "1076_MTI_SAD_XX.wav": "no_audio",
    }
    excluded = {}
    for name in crema.SETS:
        excluded.update(read_kaldi(out / name / "excluded"))
        kept = read_kaldi(out / name / "wav.scp")
        assert not any(n[:-4] in kept for n in reasons)
    assert excluded == {n[:-4]: r for n, r in reasons.items()}
    total = Counter()
    for counts in summary.values():
        total.update({k: n for k, n in counts.items() if k.startswith("excluded:")})
    assert total == {
        "excluded:empty": 2, "excluded:no_audio": 1, "excluded:silent": 1,
        "excluded:unreadable": 2,
    }  # fmt: skip
    assert (
        f"excluded 6 of {len(names) + 1} files whose audio is unusable (empty 2, "
        "no_audio 1, silent 1, unreadable 2)" in caplog.text
    )
    assert names[0][:-4] in caplog.text


def test_other_rate_is_kept_with_a_warning(corpus, tmp_path, caplog):
    name = _wavs(corpus)[0]
    soundfile.write(corpus / "AudioWAV" / name, 0.1 * np.ones((800, 2)), 8000)
    with caplog.at_level(logging.INFO):
        crema.prepare(corpus, tmp_path / "data")
    assert "1 files are not 16000 Hz mono like the release" in caplog.text
    assert "8000 Hz x 2 1" in caplog.text


@pytest.mark.parametrize(
    "name,match",
    [
        ("1001_DFA_ANG.wav", "not a CREMA-D file name"),
        ("1001_dfa_ANG_XX.wav", "not a CREMA-D file name"),
        ("1001_DFA_SUR_XX.wav", "unknown emotion code 'SUR'"),
        ("1001_IEO_ANG_XY.wav", "unknown emotion level code 'XY'"),
        ("1001_ABC_ANG_XX.wav", "unknown sentence code 'ABC'"),
        ("0999_DFA_ANG_XX.wav", "actor 0999 is outside CREMA-D's 1001-1091"),
    ],
)
def test_bad_file_names_name_the_file(corpus, tmp_path, name, match):
    src = corpus / "AudioWAV" / _wavs(corpus)[0]
    shutil.copy(src, corpus / "AudioWAV" / name)
    with pytest.raises(MeritInputError, match=match) as e:
        crema.prepare(corpus, tmp_path / "data")
    assert str(corpus.resolve() / "AudioWAV" / name) in str(e.value)


def test_hidden_and_other_files_are_ignored(corpus, tmp_path, caplog):
    audio = corpus / "AudioWAV"
    (audio / "._1001_DFA_ANG_XX.wav").write_bytes(b"\x00\x05\x16\x07")
    (audio / "notes.txt").write_text("x")
    with caplog.at_level(logging.INFO):
        crema.prepare(corpus, tmp_path / "data")
    assert "ignored 2 entries that are not .wav files" in caplog.text


def _split_lines(mini_corpus, tmp_path):
    crema.prepare(mini_corpus, tmp_path / "d0")
    return (tmp_path / "d0" / "actor_split.txt").read_text().splitlines()


def test_split_file_errors(mini_corpus, tmp_path):
    lines = _split_lines(mini_corpus, tmp_path)
    actors = [line.split("\t")[0] for line in lines]
    absent = next(str(a) for a in range(1001, 1092) if str(a) not in actors)
    cases = [
        (
            lines + [f"{absent}\ttrain"],
            f"1 actors have no audio .*{absent} \\(line 7\\)",
        ),
        (lines[1:], f"1 actors with audio are missing: {actors[0]}"),
        (
            lines[:1] + [lines[1].replace("\t", "\tvalid\t")] + lines[2:],
            ":2: .*expected",
        ),
        ([lines[0].split("\t")[0] + "\tvalid"] + lines[1:], ":1: .*expected"),
        (lines + [lines[2]], f":7: actor {actors[2]} repeats line 3"),
        ([f"{a}\ttrain" for a in actors], "no actor in dev, test"),
    ]
    for i, (text, match) in enumerate(cases):
        path = tmp_path / f"split{i}.txt"
        path.write_text("\n".join(text) + "\n")
        with pytest.raises(MeritInputError, match=match) as e:
            crema.prepare(mini_corpus, tmp_path / "data", split_file=path)
        assert str(path) in str(e.value), match
    with pytest.raises(MeritInputError, match="--split_file .*: no such file"):
        crema.prepare(mini_corpus, tmp_path / "data", split_file=tmp_path / "none")


def test_demographics_errors(corpus, tmp_path):
    csv_path = corpus / "VideoDemographics.csv"
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join(lines[:-1]) + "\n")  # the last actor's row gone
    with pytest.raises(MeritInputError, match="no row for 1 actors with audio") as e:
        crema.prepare(corpus, tmp_path / "data")
    assert str(csv_path) in str(e.value)
    csv_path.write_text('"ActorID","Age","Gender"\n' + "\n".join(lines[1:]) + "\n")
    with pytest.raises(MeritInputError, match="lacks Sex,Race,Ethnicity"):
        crema.prepare(corpus, tmp_path / "data")
    csv_path.write_text("\n".join(lines + [lines[1]]) + "\n")
    with pytest.raises(MeritInputError, match=r"csv:8: ActorID \d+ repeats line 2"):
        crema.prepare(corpus, tmp_path / "data")


def test_bad_ratios_and_corpus(tmp_path):
    actors = ["1001", "1002"]
    with pytest.raises(MeritInputError, match="leave none for train"):
        crema.draw_split(actors, 0, 0.1, 0.2)
    with pytest.raises(MeritInputError, match="--dev_ratio 0"):
        crema.draw_split(actors * 5, 0, 0, 0.2)
    with pytest.raises(MeritInputError, match="no such directory"):
        crema.prepare(tmp_path / "nowhere", tmp_path / "data")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MeritInputError, match="AudioWAV: no such directory"):
        crema.prepare(tmp_path / "empty", tmp_path / "data")


def test_cli(mini_corpus, tmp_path, capsys):
    out = tmp_path / "data"
    crema.main(["--corpus_dir", str(mini_corpus), "--outdir", str(out)])
    table = capsys.readouterr().out.splitlines()
    assert table[1].split() == ["train", "4", "20", "20", "20", "12", "40", "72"]
    with pytest.raises(SystemExit, match="crema_d_data.py: error: .*nowhere"):
        crema.main(["--corpus_dir", str(tmp_path / "nowhere"), "--outdir", str(out)])


def test_data_sh(mini_corpus, tmp_path):
    """The recipe's local/data.sh and db.sh, the corpus root from $CREMA_D."""
    recipe = copy_recipe(REPO / "egs2" / "crema_d" / "merit1", tmp_path / "r")
    env = dict(os.environ, MERIT_PYTHON=sys.executable, CREMA_D=str(mini_corpus))
    out = subprocess.run(
        ["local/data.sh", "--classes", "6", "--seed", "1"],
        cwd=recipe, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    data = recipe / "data"
    assert (data / "emotion_list").read_text().split() == list("ASHFDN")
    for name in crema.SETS:
        for f in ("wav.scp", "utt2spk", "utt2gender", "emotion", "excluded"):
            assert (data / name / f).is_file(), (name, f)
    assert out.stdout.splitlines()[0].split()[:2] == ["set", "actors"]
    reference = tmp_path / "ref"
    crema.prepare(mini_corpus, reference, classes=6, seed=1)
    assert (data / "actor_split.txt").read_text() == (
        reference / "actor_split.txt"
    ).read_text()
    digest = hashlib.sha256((data / "train" / "wav.scp").read_bytes()).hexdigest()
    assert (
        digest
        == hashlib.sha256((reference / "train" / "wav.scp").read_bytes()).hexdigest()
    )


@pytest.mark.slow
def test_recipe_stages_1_to_5(mini_corpus, tmp_path):
    """run.sh on the miniature (default durations) and generated noise, through
    simulation, formatting, filtering and labels."""
    from merit_testing import noise_env

    recipe = copy_recipe(REPO / "egs2" / "crema_d" / "merit1", tmp_path / "r")
    env = dict(
        os.environ,
        MERIT_PYTHON=sys.executable,
        CREMA_D=str(mini_corpus),
        **noise_env(tmp_path / "noise"),
    )
    env.pop("EMOBOX_CREMA_D", None)
    out = subprocess.run(
        ["./run.sh", "--stage", "1", "--stop_stage", "5", "--nj", "2",
         "--test_snrs", "0"],
        cwd=recipe, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    raw = recipe / "dump" / "raw"
    for dset in ("train_sim", "dev_sim", "test_seen_snr0", "test_unseen_snr0"):
        assert (raw / dset / "wav.scp").is_file() and (raw / dset / "emotion").is_file()
    assert (raw / "emotion_list").read_text().split() == ["A", "S", "H", "N"]
    test = read_kaldi(raw / "test_seen_snr0" / "emotion")
    assert test == read_kaldi(recipe / "data" / "test" / "emotion")
    # Stage 4 filters train/dev by duration only: every prepared utterance of
    # the miniature lasts 1-20 s, so none is dropped.
    train = read_kaldi(recipe / "data" / "train" / "emotion")
    assert len(read_kaldi(raw / "train_sim" / "emotion")) == len(train)
