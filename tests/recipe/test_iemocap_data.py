"""IEMOCAP data preparation (egs2/iemocap/merit1/local/iemocap_data.py) on the
miniature of local/make_mini_iemocap.py, in IEMOCAP's layout."""

import logging
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import soundfile
from merit_testing import REPO, copy_recipe, load_local, noise_env

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.datadir import read_kaldi

IEMOCAP_LOCAL = "egs2/iemocap/merit1/local"
iemo = load_local("iemocap_data", IEMOCAP_LOCAL)
mini = load_local("make_mini_iemocap", IEMOCAP_LOCAL)

# The test's own reading of the 4-class protocol.
CLASS = {"ang": "A", "sad": "S", "hap": "H", "exc": "H", "neu": "N"}
SETS = ("train", "dev", "test")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(root, utterances) of a miniature: 5 sessions x 4 dialogs x 6 turns."""
    root = tmp_path_factory.mktemp("iemocap") / "IEMOCAP_full_release"
    utts = mini.make_corpus(root, utts_per_dialog=6, seed=0, min_sec=0.1, max_sec=0.2)
    return root, utts


@pytest.fixture
def small(tmp_path):
    """A miniature of 2 turns per dialog, to be broken by a test."""
    root = tmp_path / "iemocap"
    mini.make_corpus(root, utts_per_dialog=2, min_sec=0.05, max_sec=0.05)
    return root


def label_file(root: Path, dialog: str) -> Path:
    session = int(dialog[4])
    return root / f"Session{session}" / "dialog" / "EmoEvaluation" / f"{dialog}.txt"


def line_of(path: Path, needle: str) -> int:
    """The number of the first line of ``path`` containing ``needle``."""
    lines = path.read_text().splitlines()
    return next(i for i, t in enumerate(lines, 1) if needle in t)


def expected_set(u, fold: int, dev_split: str) -> str:
    dev_session = fold % 5 + 1
    if u.session == fold:
        return "test"
    if u.session == dev_session:
        if dev_split == "session":
            return "dev"
        if u.speaker == f"Ses0{dev_session}{'F' if fold % 2 else 'M'}":
            return "dev"
    return "train"


def test_miniature_layout(corpus):
    root, utts = corpus
    assert len(utts) == 5 * 4 * 6
    assert {u.code for u in utts} == set(iemo.ALL_CODES)
    dialogs = sorted(p.name for p in (root / "Session3/sentences/wav").iterdir())
    assert dialogs == [
        "Ses03F_impro01", "Ses03F_script01_1", "Ses03M_impro05a", "Ses03M_script02_2",
    ]  # fmt: skip
    u = utts[1]  # the second turn of Ses01F_impro01: the male actor's first
    assert (u.utt, u.speaker) == ("Ses01F_impro01_M000", "Ses01M")
    wav = root / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M000.wav"
    info = soundfile.info(wav)
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    lines = label_file(root, "Ses01F_impro01").read_text().splitlines()
    assert lines[:2] == ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    fields = lines[2].split("\t")
    assert fields[1:3] == [utts[0].utt, utts[0].code] and len(fields) == 4
    assert fields[0].startswith("[") and " - " in fields[0]
    assert any(t.startswith("C-E2:\t") for t in lines)
    assert any(t.startswith("A-E2:\tval ") and "; dom  " in t for t in lines)
    # Deterministic per seed.
    again = mini.make_corpus(
        root.parent / "again", utts_per_dialog=6, seed=0, min_sec=0.1, max_sec=0.2
    )
    assert again == utts


@pytest.mark.parametrize("fold", [1, 2, 3, 4, 5])
def test_fold_sets_and_counts(corpus, tmp_path, fold):
    root, utts = corpus
    out = tmp_path / f"fold{fold}"
    summary = iemo.prepare(root, out, fold)
    assert list(summary) == list(SETS)
    assert (out / "emotion_list").read_text().split() == ["A", "S", "H", "N"]
    dev_session = fold % 5 + 1
    train_sessions = [s for s in range(1, 6) if s not in (fold, dev_session)]
    assert (out / "fold").read_text().split() == [
        f"fold={fold}", "dev_split=session", f"test=Session{fold}",
        f"dev=Session{dev_session}",
        "train=" + ",".join(f"Session{s}" for s in train_sessions),
    ]  # fmt: skip
    for name in SETS:
        members = [u for u in utts if expected_set(u, fold, "session") == name]
        kept = [u for u in members if u.code in CLASS]
        emotion = read_kaldi(out / name / "emotion")
        assert emotion == {u.utt: CLASS[u.code] for u in kept}
        assert read_kaldi(out / name / "excluded") == {
            u.utt: u.code for u in members if u.code not in CLASS
        }
        labels = Counter(CLASS[u.code] for u in kept)
        dropped = Counter(u.code for u in members if u.code not in CLASS)
        assert summary[name] == {
            **{c: labels[c] for c in "ASHN"},
            "merged:exc": sum(u.code == "exc" for u in kept),
            **{f"excluded:{c}": n for c, n in sorted(dropped.items())},
        }
        assert all(summary[name][c] > 0 for c in "ASHN"), (name, summary[name])
        for f in ("wav.scp", "utt2spk", "utt2gender", "emotion_attr"):
            assert list(read_kaldi(out / name / f)) == list(emotion), f
    test_sessions = {int(u[4]) for u in read_kaldi(out / "test" / "emotion")}
    assert test_sessions == {fold}
    assert {int(u[4]) for u in read_kaldi(out / "dev" / "emotion")} == {dev_session}


def test_folds_test_sets_are_the_sessions(corpus, tmp_path):
    root, utts = corpus
    tests = {}
    for fold in range(1, 6):
        iemo.prepare(root, tmp_path / f"f{fold}", fold)
        tests[fold] = set(read_kaldi(tmp_path / f"f{fold}" / "test" / "emotion"))
    for fold, test in tests.items():
        assert test == {u.utt for u in utts if u.session == fold and u.code in CLASS}
    # Together the five test sets are every kept utterance, each once.
    assert sum(len(t) for t in tests.values()) == sum(u.code in CLASS for u in utts)


def test_exc_is_merged_into_hap(corpus, tmp_path):
    root, utts = corpus
    summary = iemo.prepare(root, tmp_path / "data", 1)
    emotion = {}
    for name in SETS:
        emotion.update(read_kaldi(tmp_path / "data" / name / "emotion"))
    exc = [u.utt for u in utts if u.code == "exc"]
    hap = [u.utt for u in utts if u.code == "hap"]
    assert exc and hap
    assert {emotion[u] for u in exc + hap} == {"H"}
    assert sum(s["merged:exc"] for s in summary.values()) == len(exc)
    assert sum(s["H"] for s in summary.values()) == len(exc) + len(hap)
    table = iemo.format_summary(summary).splitlines()
    assert table[0].split() == ["set", "A", "S", "H", "N", "(exc)", "excluded", "total"]


def test_excluded_codes_are_counted(corpus, tmp_path):
    root, utts = corpus
    summary = iemo.prepare(root, tmp_path / "data", 2)
    excluded = Counter()
    for name in SETS:
        excluded.update(read_kaldi(tmp_path / "data" / name / "excluded").values())
        for k, n in summary[name].items():
            if k.startswith("excluded:"):
                assert n > 0
    assert set(excluded) == {"fru", "sur", "fea", "dis", "oth", "xxx"}
    assert excluded == Counter(u.code for u in utts if u.code not in CLASS)
    total = sum(
        n for s in summary.values() for k, n in s.items() if k.startswith("excluded:")
    )
    assert total == sum(excluded.values())


@pytest.mark.parametrize("dev_split", ["session", "speaker"])
def test_speakers(corpus, tmp_path, dev_split):
    root, utts = corpus
    speaker = {u.utt: u.speaker for u in utts}
    for fold in range(1, 6):
        out = tmp_path / f"{dev_split}{fold}"
        iemo.prepare(root, out, fold, dev_split)
        spks = {}
        for name in SETS:
            utt2spk = read_kaldi(out / name / "utt2spk")
            assert utt2spk == {u: speaker[u] for u in utt2spk}
            gender = read_kaldi(out / name / "utt2gender")
            assert all(
                gender[u] == {"F": "Female", "M": "Male"}[s[-1]]
                for u, s in utt2spk.items()
            )
            spks[name] = set(utt2spk.values())
        assert not spks["train"] & spks["test"]
        assert not spks["train"] & spks["dev"] and not spks["dev"] & spks["test"]
        assert spks["test"] == {f"Ses0{fold}F", f"Ses0{fold}M"}
        dev_session = fold % 5 + 1
        if dev_split == "session":
            assert spks["dev"] == {f"Ses0{dev_session}F", f"Ses0{dev_session}M"}
            assert len(spks["train"]) == 6
        else:
            assert spks["dev"] == {f"Ses0{dev_session}{'F' if fold % 2 else 'M'}"}
            assert len(spks["train"]) == 7
        assert iemo.fold_speakers(fold, dev_split)["dev"] == sorted(spks["dev"])
    # The speaker is the turn's actor, not the dialog's marker wearer.
    utt2spk = read_kaldi(tmp_path / f"{dev_split}1" / "test" / "utt2spk")
    assert utt2spk["Ses01F_impro01_M000"] == "Ses01M"
    assert utt2spk["Ses01F_impro01_F000"] == "Ses01F"


def test_fold_speakers_dev_actor_alternates():
    devs = [iemo.fold_speakers(k, "speaker")["dev"] for k in range(1, 6)]
    assert devs == [["Ses02F"], ["Ses03M"], ["Ses04F"], ["Ses05M"], ["Ses01F"]]
    with pytest.raises(MeritInputError, match="--fold 6"):
        iemo.fold_speakers(6)


def test_emotion_attr_is_arousal_valence_dominance(corpus, tmp_path):
    root, utts = corpus
    iemo.prepare(root, tmp_path / "data", 3)
    attr = {}
    for name in SETS:
        attr.update(read_kaldi(tmp_path / "data" / name / "emotion_attr"))
    for u in utts:
        if u.code in CLASS:
            got = [float(x) for x in attr[u.utt].split()]
            assert got == [u.activation, u.valence, u.dominance], u.utt


def test_attr_order_and_skipped_lines(small, tmp_path, caplog):
    """A hand-written block: [V, A, D] -> "A V D"; header, evaluator, blank and %
    lines, hidden files and sub-folders are not utterance lines."""
    path = label_file(small, "Ses01F_impro01")
    lines = path.read_text().splitlines()
    at = line_of(path, "Ses01F_impro01_F000")
    lines[at - 1] = (
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tang\t[1.5000, 4.0000, 4.5000]"
    )
    lines.insert(at, "% a comment")
    path.write_text("\n".join(lines) + "\n")
    label_dir = path.parent
    (label_dir / "Categorical").mkdir()
    (label_dir / "Categorical" / "Ses01F_impro01_e1_cat.txt").write_text("[bad\n")
    (label_dir / "._Ses01F_impro01.txt").write_text("[bad\n")
    # A wav no label line lists: a warning, not an error.
    extra = small / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F009.wav"
    shutil.copy(extra.with_name("Ses01F_impro01_F000.wav"), extra)
    with caplog.at_level(logging.INFO):
        iemo.prepare(small, tmp_path / "data", 1)
    test = tmp_path / "data" / "test"
    assert read_kaldi(test / "emotion_attr")["Ses01F_impro01_F000"] == "4.0 1.5 4.5"
    assert read_kaldi(test / "emotion")["Ses01F_impro01_F000"] == "A"
    assert (
        "1 wav files are in no EmoEvaluation file (ignored): Ses01F_impro01_F009"
        in (caplog.text)
    )


def test_attributes_outside_the_scale_warn(small, tmp_path, caplog):
    path = label_file(small, "Ses02M_impro02")
    lines = path.read_text().splitlines()
    at = line_of(path, "Ses02M_impro02_M000")
    head = lines[at - 1].rsplit("\t", 1)[0]
    lines[at - 1] = head + "\t[5.5000, 3.0000, 3.0000]"
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        iemo.prepare(small, tmp_path / "data", 2)
    assert f"1 utterances have [V, A, D] values outside [1, 5] (kept): {path}:{at}" in (
        caplog.text
    )


def test_missing_wav_names_file_and_line(small, tmp_path):
    path = label_file(small, "Ses04M_script02_2")
    wav = small / "Session4/sentences/wav/Ses04M_script02_2/Ses04M_script02_2_F000.wav"
    wav.unlink()
    with pytest.raises(MeritInputError) as e:
        iemo.prepare(small, tmp_path / "data", 1)
    at = line_of(path, "Ses04M_script02_2_F000")
    assert "1 of 40 labelled utterances have no wav file" in str(e.value)
    assert f"{path}:{at}: Ses04M_script02_2_F000 has no wav file {wav.resolve()}" in (
        str(e.value)
    )


@pytest.mark.parametrize(
    "replace,match",
    [
        (
            ("]\tSes03F_impro01_M000\t", "] Ses03F_impro01_M000 x "),
            "malformed utterance",
        ),
        (("[", "[abc"), "malformed utterance line: start time 'abc"),
        ((", ", ",, "), r"has 4 values, expected \[valence, activation, dominance\]"),
        (("\tang\t", "\tNeutral\t"), "unknown category code 'Neutral'"),
        (("\tang\t", "\tcon\t"), "unknown category code 'con'"),
        (("Ses03F_impro01_M000", "Ses03F_impro09_M000"), "is not Ses03F_impro01_"),
        (
            ("Ses03F_impro01_M000", "Ses03F_impro01_X000"),
            "'Ses03F_impro01_X000' is not",
        ),
    ],
)
def test_bad_utterance_line_names_file_and_line(small, tmp_path, replace, match):
    path = label_file(small, "Ses03F_impro01")
    old, new = replace
    lines = path.read_text().splitlines()
    at = next(i for i, t in enumerate(lines, 1) if t.startswith("[") and old in t)
    lines[at - 1] = lines[at - 1].replace(old, new, 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MeritInputError, match=match) as e:
        iemo.prepare(small, tmp_path / "data", 1)
    assert str(e.value).startswith(f"{path}:{at}: ")


def test_utterance_of_another_session_is_an_error(small, tmp_path):
    src = label_file(small, "Ses01F_impro01")
    dst = small / "Session2" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    shutil.copy(src, dst)
    with pytest.raises(MeritInputError, match="is not of Session2") as e:
        iemo.prepare(small, tmp_path / "data", 1)
    assert str(e.value).startswith(f"{dst}:3: ")


def test_repeated_utterance_names_both_places(small, tmp_path):
    path = label_file(small, "Ses05F_impro01")
    lines = path.read_text().splitlines()
    first = line_of(path, "Ses05F_impro01_M000")
    lines += ["", lines[first - 1], "C-E2:\tNeutral;\t()"]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MeritInputError) as e:
        iemo.prepare(small, tmp_path / "data", 1)
    assert str(e.value) == (
        f"{path}:{len(lines) - 1}: utterance Ses05F_impro01_M000 repeats "
        f"{path}:{first}"
    )


def test_missing_session_or_labels(small, tmp_path):
    with pytest.raises(MeritInputError, match="no such directory"):
        iemo.prepare(tmp_path / "nowhere", tmp_path / "data", 1)
    shutil.rmtree(small / "Session4" / "dialog")
    with pytest.raises(MeritInputError, match="Session4/dialog/EmoEvaluation: no such"):
        iemo.prepare(small, tmp_path / "data", 1)


def test_a_set_without_the_four_classes_is_an_error(small, tmp_path):
    for path in (small / "Session1" / "dialog" / "EmoEvaluation").glob("*.txt"):
        text = path.read_text()
        for code in CLASS:
            text = text.replace(f"\t{code}\t", "\tfru\t")
        path.write_text(text)
    with pytest.raises(MeritInputError, match="test .Session1. has no utterance of"):
        iemo.prepare(small, tmp_path / "data", 1)


def test_mini_refuses_a_foreign_directory(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "Session1").mkdir()
    with pytest.raises(MeritInputError, match="refusing to write"):
        mini.make_corpus(tmp_path / "real", utts_per_dialog=2)
    assert (tmp_path / "real" / "Session1").is_dir()


def test_cli(corpus, tmp_path, capsys):
    root, _ = corpus
    out = tmp_path / "data"
    iemo.main(["--corpus_dir", str(root), "--outdir", str(out), "--fold", "4"])
    table = capsys.readouterr().out.splitlines()
    assert [r.split()[0] for r in table] == ["set", "train", "dev", "test"]
    assert (out / "fold").read_text().startswith("fold=4 dev_split=session ")
    with pytest.raises(SystemExit, match="iemocap_data.py: error: .*nowhere"):
        iemo.main(
            [
                "--corpus_dir",
                str(tmp_path / "nowhere"),
                "--outdir",
                str(out),
                "--fold",
                "1",
            ]
        )


def test_recipe_stage_1_per_fold(corpus, tmp_path):
    """run.sh (through merit.sh's stage 1 and local/data.sh, reading db.sh with
    IEMOCAP from the environment) prepares data/fold<k> for each fold asked for;
    local/data.sh also runs by itself."""
    root, utts = corpus
    recipe = copy_recipe(REPO / "egs2" / "iemocap" / "merit1", tmp_path / "r")
    env = dict(os.environ, MERIT_PYTHON=sys.executable, IEMOCAP=str(root))
    out = subprocess.run(
        ["./run.sh", "--folds", "2 5", "--stage", "1", "--stop_stage", "1",
         "--nj", "1"],
        cwd=recipe, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    for fold in (2, 5):
        data = recipe / "data" / f"fold{fold}"
        assert (data / ".done").is_file()
        test = read_kaldi(data / "test" / "emotion")
        assert {int(u[4]) for u in test} == {fold}
        assert (data / "emotion_list").read_text().split() == ["A", "S", "H", "N"]
        log = recipe / "dump" / f"fold{fold}" / "log" / "data_prep.log"
        assert "excluded" in log.read_text()
    assert not (recipe / "data" / "fold1").exists()
    out = subprocess.run(
        ["local/data.sh", "--fold", "3", "--dev_split", "speaker"],
        cwd=recipe, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert set(read_kaldi(recipe / "data" / "dev" / "utt2spk").values()) == {"Ses04F"}
    bad = subprocess.run(
        ["./run.sh", "--folds", "6", "--stage", "1", "--stop_stage", "1"],
        cwd=recipe, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2 and "6 is not a fold" in bad.stderr


@pytest.mark.slow
def test_recipe_stages_1_to_5(tmp_path):
    """One fold of run.sh on a miniature (default durations) and generated noise,
    through simulation, formatting, filtering and labels."""
    root = tmp_path / "IEMOCAP_full_release"
    mini.make_corpus(root, utts_per_dialog=6, seed=1)
    recipe = copy_recipe(REPO / "egs2" / "iemocap" / "merit1", tmp_path / "r")
    env = dict(
        os.environ,
        MERIT_PYTHON=sys.executable,
        IEMOCAP=str(root),
        **noise_env(tmp_path / "noise"),
    )
    out = subprocess.run(
        ["./run.sh", "--folds", "3", "--stage", "1", "--stop_stage", "5",
         "--nj", "2", "--test_snrs", "0"],
        cwd=recipe, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    raw = recipe / "dump" / "fold3" / "raw"
    for dset in ("train_sim", "dev_sim", "test_seen_snr0", "test_unseen_snr0"):
        assert (raw / dset / "wav.scp").is_file() and (raw / dset / "emotion").is_file()
    assert (raw / "emotion_list").read_text().split() == ["A", "S", "H", "N"]
    test = read_kaldi(raw / "test_seen_snr0" / "emotion")
    assert test == read_kaldi(recipe / "data" / "fold3" / "test" / "emotion")
