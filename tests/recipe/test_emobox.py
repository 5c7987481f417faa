"""EmoBox fold reader (espnet2_merit.recipe.emobox) on miniature EmoBox data dirs in
the published format (github.com/emo-box/EmoBox@08280f2, data/<corpus>/), pointing
at the IEMOCAP and CREMA-D miniatures of the recipes (local/make_mini_*.py)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from merit_testing import REPO, copy_recipe, load_local

from espnet2_merit.bin import merit_emobox_data
from espnet2_merit.errors import MeritInputError
from espnet2_merit.recipe import emobox
from espnet2_merit.utils.datadir import read_kaldi

mini_iemocap = load_local("make_mini_iemocap", "egs2/iemocap/merit1/local")
mini_crema = load_local("make_mini_crema_d", "egs2/crema_d/merit1/local")

# data/iemocap/label_map.json and data/cremad/label_map.json as published.
IEMOCAP_LABELS = {"neu": "Neutral", "hap": "Happy", "ang": "Angry", "sad": "Sad",
                  "exc": "Happy"}  # fmt: skip
CREMA_LABELS = {"ANG": "Angry", "DIS": "Disgust", "FEA": "Fear", "HAP": "Happy",
                "NEU": "Neutral", "SAD": "Sad"}  # fmt: skip
IEMOCAP_MAP = "ang=A,sad=S,hap=H,exc=H,neu=N"
CREMA_TEST_ACTORS = 1


def _line(corpus, key, wav, code, seconds=1.0):
    """One .jsonl line, the keys and order of EmoBox's write_jsonl."""
    return json.dumps({
        "key": key, "dataset": corpus, "wav": wav, "type": "raw",
        "sample_rate": 16000, "num_frame": seconds * 16000, "task": "category",
        "length": seconds, "emo": code, "channel": 1,
    })  # fmt: skip


def _stm(key, spk, code, seconds=1.0):
    """One data.seg.wrd.stm line, as EmoBox's write_mini_format writes it."""
    meta = f"<id={key},lang=en,spk={spk},emotion={code}>"
    return f"{key} 1 {spk} 0 {seconds} {meta} {code}"


def _write(emobox_dir, corpus, labels, folds, stm):
    """folds: fold -> {split: [lines]}."""
    emobox_dir.mkdir(parents=True)
    (emobox_dir / "label_map.json").write_text(json.dumps(labels, indent=4))
    (emobox_dir / "data.seg.wrd.stm").write_text("\n".join(stm) + "\n")
    for fold, splits in folds.items():
        d = emobox_dir / f"fold_{fold}"
        d.mkdir()
        for split, lines in splits.items():
            text = "\n".join(lines) + "\n"
            (d / f"{corpus}_{split}_fold_{fold}.jsonl").write_text(text)


@pytest.fixture(scope="module")
def iemocap(tmp_path_factory):
    """(corpus root, EmoBox dir, utterances EmoBox lists): the 5 folds leave one
    session out, of the 4-class codes only (as EmoBox's iemocap.py keeps them)."""
    base = tmp_path_factory.mktemp("emobox_iemocap")
    root = base / "IEMOCAP_full_release"
    utts = mini_iemocap.make_corpus(
        root, utts_per_dialog=3, seed=0, min_sec=0.2, max_sec=0.3
    )
    kept = [u for u in utts if u.code in IEMOCAP_LABELS]
    lines, stm = {}, []
    for u in kept:
        key = f"iemocap-{u.utt}"
        wav = (
            f"downloads/iemocap/Session{u.session}/sentences/wav/{u.dialog}/{u.utt}.wav"
        )
        lines[u.utt] = _line("iemocap", key, wav, u.code, u.seconds)
        # EmoBox's speaker: the dialog prefix (iemocap.py: uuid.split("_")[0])
        stm.append(_stm(key, u.utt.split("_")[0], u.code, u.seconds))
    folds = {
        k: {
            "train": [lines[u.utt] for u in kept if u.session != k],
            "test": [lines[u.utt] for u in kept if u.session == k],
        }
        for k in range(1, 6)
    }
    _write(base / "emobox" / "iemocap", "iemocap", IEMOCAP_LABELS, folds, stm)
    return root, base / "emobox" / "iemocap", kept


def _crema_key(name):
    return "cremad-" + name[: -len(".wav")].replace("_", "-")


@pytest.fixture(scope="module")
def crema(tmp_path_factory):
    """(corpus root, EmoBox dir, {set: [file names]}): one fold, the first actor
    tested."""
    base = tmp_path_factory.mktemp("emobox_crema")
    root = base / "CREMA-D"
    mini_crema.generate(root, actors=4, seed=0)
    names = sorted(p.name for p in (root / "AudioWAV").glob("*.wav"))
    actors = sorted({n.split("_")[0] for n in names})
    test = [n for n in names if n.split("_")[0] in actors[:CREMA_TEST_ACTORS]]
    train = [n for n in names if n not in test]

    def line(n):
        return _line("cremad", _crema_key(n), f"downloads/cremad/AudioWAV/{n}",
                     n.split("_")[2])  # fmt: skip

    stm = [_stm(_crema_key(n), n.split("_")[0], n.split("_")[2]) for n in names]
    folds = {1: {"train": [line(n) for n in train], "test": [line(n) for n in test]}}
    _write(base / "emobox" / "cremad", "cremad", CREMA_LABELS, folds, stm)
    return root, base / "emobox" / "cremad", {"train": train, "test": test}


@pytest.fixture
def crema_copy(crema, tmp_path):
    """A copy of the CREMA-D EmoBox dir that a test may damage."""
    root, emobox_dir, sets = crema
    return root, Path(shutil.copytree(emobox_dir, tmp_path / "cremad")), sets


def _fold_file(emobox_dir, split="train", fold=1):
    return emobox_dir / f"fold_{fold}" / f"{emobox_dir.name}_{split}_fold_{fold}.jsonl"


def _tree(d: Path):
    return {
        p.relative_to(d).as_posix(): p.read_bytes() for p in d.rglob("*") if p.is_file()
    }


def test_iemocap_fold_sets_labels_paths_speakers(iemocap, tmp_path):
    root, emobox_dir, kept = iemocap
    out = tmp_path / "data"
    summary = emobox.prepare(emobox_dir, 2, root, out, class_map=IEMOCAP_MAP)
    test = read_kaldi(out / "test" / "emotion")
    # EmoBox's fold 2 tests Session 2; train + dev hold the other sessions.
    assert set(test) == {f"iemocap-{u.utt}" for u in kept if u.session == 2}
    rest = {
        **read_kaldi(out / "train" / "emotion"),
        **read_kaldi(out / "dev" / "emotion"),
    }
    assert set(rest) == {f"iemocap-{u.utt}" for u in kept if u.session != 2}
    code = {f"iemocap-{u.utt}": u.code for u in kept}
    merged = {"ang": "A", "sad": "S", "hap": "H", "exc": "H", "neu": "N"}
    assert all(v == merged[code[k]] for k, v in {**test, **rest}.items())
    assert (out / "emotion_list").read_text().split() == ["A", "S", "H", "N"]
    assert summary["test"]["H"] == sum(
        u.code in ("hap", "exc") for u in kept if u.session == 2
    )
    # EmoBox's prefix downloads/iemocap replaced by the corpus root (absolute).
    wavs = read_kaldi(out / "test" / "wav.scp")
    for u in kept:
        if u.session == 2:
            path = Path(wavs[f"iemocap-{u.utt}"])
            assert path == (root.resolve() / f"Session2/sentences/wav/{u.dialog}/"
                            f"{u.utt}.wav")  # fmt: skip
            assert path.is_file()
    # Speakers: the speaking actor, not EmoBox's dialog prefix.
    spk = read_kaldi(out / "test" / "utt2spk")
    assert all(spk[f"iemocap-{u.utt}"] == u.speaker for u in kept if u.session == 2)
    assert set(spk.values()) == {"Ses02F", "Ses02M"}
    assert not (out / "test" / "emotion_attr").exists()
    assert "corpus=iemocap fold=2 dev=speaker" in (out / "emobox_fold").read_text()


def test_dev_is_speaker_disjoint_seeded_and_listed(iemocap, tmp_path):
    root, emobox_dir, _ = iemocap
    a, b = tmp_path / "a", tmp_path / "b"
    emobox.prepare(emobox_dir, 1, root, a, IEMOCAP_MAP, dev_ratio=0.25, seed=3)
    emobox.prepare(emobox_dir, 1, root, b, IEMOCAP_MAP, dev_ratio=0.25, seed=3)
    assert _tree(a) == _tree(b)
    train = set(read_kaldi(a / "train" / "utt2spk").values())
    dev = set(read_kaldi(a / "dev" / "utt2spk").values())
    assert len(train) == 6 and len(dev) == 2 and not train & dev  # 8 actors
    assert (a / "dev_list.txt").read_text().split() == sorted(dev)
    draws = set()
    for seed in range(6):
        out = tmp_path / f"s{seed}"
        emobox.prepare(emobox_dir, 1, root, out, IEMOCAP_MAP, dev_ratio=0.25, seed=seed)
        draws.add((out / "dev_list.txt").read_text())
    assert len(draws) > 1
    # --dev_list reads the drawn dev back, whatever --seed says.
    c = tmp_path / "c"
    emobox.prepare(emobox_dir, 1, root, c, IEMOCAP_MAP, seed=99,
                   dev_list=a / "dev_list.txt")  # fmt: skip
    for name in ("train", "dev", "test"):
        assert _tree(c / name) == _tree(a / name)


def test_dev_by_utterance(crema, tmp_path):
    root, emobox_dir, sets = crema
    out = tmp_path / "data"
    emobox.prepare(emobox_dir, 1, root, out, "ANG,SAD,HAP,NEU,FEA,DIS",
                   dev_by="utterance", dev_ratio=0.2, seed=0)  # fmt: skip
    dev = read_kaldi(out / "dev" / "emotion")
    train = read_kaldi(out / "train" / "emotion")
    assert len(dev) == round(0.2 * len(sets["train"]))
    assert len(dev) + len(train) == len(sets["train"]) and not set(dev) & set(train)
    # By utterance, the dev actors are train actors too.
    spk = read_kaldi(out / "dev" / "utt2spk").values()
    assert set(spk) <= set(read_kaldi(out / "train" / "utt2spk").values())
    assert (out / "dev_list.txt").read_text().split() == sorted(dev)


def test_official_valid_file_is_dev(crema_copy, tmp_path):
    """m3ed, meld and msppodcast publish <corpus>_valid_fold_<n>.jsonl."""
    root, emobox_dir, sets = crema_copy
    lines = _fold_file(emobox_dir).read_text().splitlines()
    _fold_file(emobox_dir).write_text("\n".join(lines[5:]) + "\n")
    _fold_file(emobox_dir, "valid").write_text("\n".join(lines[:5]) + "\n")
    out = tmp_path / "data"
    (out).mkdir()
    (out / "dev_list.txt").write_text("stale\n")
    emobox.prepare(emobox_dir, 1, root, out, "ANG,SAD,HAP,NEU,FEA,DIS")
    assert set(read_kaldi(out / "dev" / "wav.scp")) == {
        json.loads(x)["key"] for x in lines[:5]
    }
    assert len(read_kaldi(out / "train" / "wav.scp")) == len(lines) - 5
    assert not (out / "dev_list.txt").exists()
    assert "dev=valid" in (out / "emobox_fold").read_text()


def test_class_map_subset_is_excluded_and_counted(crema, tmp_path):
    root, emobox_dir, sets = crema
    out = tmp_path / "data"
    summary = emobox.prepare(emobox_dir, 1, root, out, "ANG=A,SAD=S,HAP=H,NEU=N")
    test = read_kaldi(out / "test" / "emotion")
    excluded = read_kaldi(out / "test" / "excluded")
    assert set(test.values()) == set("ASHN")
    assert set(excluded.values()) == {"FEA", "DIS"}
    assert len(test) + len(excluded) == len(sets["test"])
    assert summary["test"]["excluded:FEA"] == sum("_FEA_" in n for n in sets["test"])
    assert (out / "emotion_list").read_text().split() == list("ASHN")
    assert set(read_kaldi(out / "test" / "utt2spk").values()) == {
        sets["test"][0].split("_")[0]
    }  # the stm's actor


def test_codes_as_written_or_merged_by_label_map(iemocap, tmp_path):
    root, emobox_dir, kept = iemocap
    raw, merged = tmp_path / "raw", tmp_path / "merged"
    emobox.prepare(emobox_dir, 1, root, raw)
    codes = {u.code for u in kept}
    assert (raw / "emotion_list").read_text().split() == [
        c for c in IEMOCAP_LABELS if c in codes
    ]
    test = read_kaldi(raw / "test" / "emotion")
    assert all(test[f"iemocap-{u.utt}"] == u.code for u in kept if u.session == 1)
    emobox.prepare(emobox_dir, 1, root, merged, class_map="emobox")
    assert (merged / "emotion_list").read_text().split() == [
        "Neutral", "Happy", "Angry", "Sad"
    ]  # fmt: skip
    test = read_kaldi(merged / "test" / "emotion")
    assert all(
        test[f"iemocap-{u.utt}"] == IEMOCAP_LABELS[u.code]
        for u in kept
        if u.session == 1
    )


def test_without_stm_each_utterance_is_its_speaker(crema_copy, tmp_path, caplog):
    root, emobox_dir, _ = crema_copy
    (emobox_dir / "data.seg.wrd.stm").unlink()
    out = tmp_path / "data"
    emobox.prepare(emobox_dir, 1, root, out)
    spk = read_kaldi(out / "train" / "utt2spk")
    assert all(k == v for k, v in spk.items())
    assert "no speaker" in caplog.text


def test_keys_with_spaces_and_stale_files(crema_copy, tmp_path):
    """asvpesd and resd publish keys with spaces; an earlier preparation's
    per-utterance files would describe other utterances."""
    root, emobox_dir, _ = crema_copy
    path = _fold_file(emobox_dir)
    lines = path.read_text().splitlines()
    obj = json.loads(lines[0])
    obj["key"] = obj["key"] + " -02"
    path.write_text("\n".join([json.dumps(obj), *lines[1:]]) + "\n")
    out = tmp_path / "data"
    for name in ("train", "dev"):
        (out / name).mkdir(parents=True)
        (out / name / "emotion_attr").write_text("x 1 2 3\n")
        (out / name / "utt2gender").write_text("x Male\n")
    emobox.prepare(emobox_dir, 1, root, out, dev_by="utterance", dev_ratio=0.5)
    utts = {
        **read_kaldi(out / "train" / "wav.scp"),
        **read_kaldi(out / "dev" / "wav.scp"),
    }
    assert obj["key"].replace(" ", "_") in utts
    for name in ("train", "dev"):
        assert not (out / name / "emotion_attr").exists()
        assert not (out / name / "utt2gender").exists()
    # Two keys that become one id.
    twin = dict(obj, key=obj["key"].replace(" ", "\t"))
    path.write_text("\n".join([json.dumps(obj), json.dumps(twin), *lines[1:]]) + "\n")
    with pytest.raises(MeritInputError, match=rf"{path}:2: keys .* both become"):
        emobox.prepare(emobox_dir, 1, root, tmp_path / "x")


def _edit_line(emobox_dir, split, num, edit):
    """Apply ``edit`` (dict -> dict, or str -> str when it is a str method) to line
    ``num`` of a fold file; returns the file."""
    path = _fold_file(emobox_dir, split)
    lines = path.read_text().splitlines()
    lines[num - 1] = edit(lines[num - 1])
    path.write_text("\n".join(lines) + "\n")
    return path


def _json_edit(change):
    def edit(text):
        obj = json.loads(text)
        change(obj)
        return json.dumps(obj)

    return edit


@pytest.mark.parametrize(
    "num, edit, match",
    [
        (3, lambda t: t[:-5], r"malformed JSON line"),
        (2, lambda t: "[1, 2]", r"expected a JSON object"),
        (4, _json_edit(lambda o: o.pop("emo")), r"no 'emo' key"),
        (4, _json_edit(lambda o: o.pop("wav")), r"no 'wav' key"),
        (2, _json_edit(lambda o: o.update(emo="ANX")), r"unknown label 'ANX'"),
        (2, _json_edit(lambda o: o.update(dataset="iemocap")), r"dataset 'iemocap'"),
        (2, _json_edit(lambda o: o.update(type="feature")), r"type 'feature'"),
        (2, _json_edit(lambda o: o.update(start_time=0, end_time=1)), r"segment"),
        (2, _json_edit(lambda o: o.update(wav="AudioWAV/x.wav")), r"not under"),
        (
            2,
            _json_edit(lambda o: o.update(wav="downloads/cremad/AudioWAV/none.wav")),
            r"1 of \d+ utterances have no audio .*:2: .*none\.wav",
        ),
    ],
)
def test_bad_lines_name_file_and_line(crema_copy, tmp_path, num, edit, match):
    root, emobox_dir, _ = crema_copy
    path = _edit_line(emobox_dir, "train", num, edit)
    with pytest.raises(MeritInputError) as e:
        emobox.prepare(emobox_dir, 1, root, tmp_path / "data")
    assert f"{path}:{num}: " in str(e.value)
    assert re.search(match, str(e.value)), str(e.value)


def test_repeated_key_and_utterance_in_train_and_test(crema_copy, tmp_path):
    root, emobox_dir, _ = crema_copy
    train = _fold_file(emobox_dir)
    lines = train.read_text().splitlines()
    train.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(MeritInputError, match=rf"{train}:{len(lines) + 1}: key .* "
                       "repeats line 2"):  # fmt: skip
        emobox.prepare(emobox_dir, 1, root, tmp_path / "data")
    train.write_text("\n".join(lines) + "\n")
    test = _fold_file(emobox_dir, "test")
    test.write_text(test.read_text() + lines[2] + "\n")
    n = len(test.read_text().splitlines())
    with pytest.raises(MeritInputError, match=rf"{test}:{n}: utterance .* is also in "
                       rf"{train}:3 \(in two sets\)"):  # fmt: skip
        emobox.prepare(emobox_dir, 1, root, tmp_path / "data")


def test_fold_without_files_and_other_input_errors(crema, iemocap, tmp_path):
    root, emobox_dir, _ = crema
    with pytest.raises(MeritInputError, match=r"fold 3 has no files .* folds: 1$"):
        emobox.prepare(emobox_dir, 3, root, tmp_path / "d")
    _, iemocap_dir, _ = iemocap
    with pytest.raises(MeritInputError, match=r"fold 6 .* folds: 1 2 3 4 5$"):
        emobox.prepare(iemocap_dir, 6, root, tmp_path / "d")
    with pytest.raises(MeritInputError, match=r"--emobox_dir .*: no such directory"):
        emobox.prepare(tmp_path / "none", 1, root, tmp_path / "d")
    with pytest.raises(MeritInputError, match=r"--corpus_dir .*: no such directory"):
        emobox.prepare(emobox_dir, 1, tmp_path / "none", tmp_path / "d")
    # The prefix is EmoBox's downloads/<corpus>: another root is not found.
    with pytest.raises(MeritInputError, match=r"have no audio under --corpus_dir"):
        emobox.prepare(emobox_dir, 1, root / "AudioWAV", tmp_path / "d")
    # ... unless --emobox_prefix says what it replaces.
    emobox.prepare(emobox_dir, 1, root / "AudioWAV", tmp_path / "d",
                   emobox_prefix="downloads/cremad/AudioWAV")  # fmt: skip
    for spec, match in (
        ("ANG=A,SAD=-", "cannot be a class"),
        ("ANG=A,ANG=B", "given twice"),
        ("ANG=A B", "not 'code"),
    ):
        with pytest.raises(MeritInputError, match=match):  # fmt: skip
            emobox.prepare(emobox_dir, 1, root, tmp_path / "d", class_map=spec)
    with pytest.raises(MeritInputError, match=r"--dev_ratio 1.5"):
        emobox.prepare(emobox_dir, 1, root, tmp_path / "d", dev_ratio=1.5)
    bad = tmp_path / "dev_list"
    bad.write_text("9999\n")
    with pytest.raises(MeritInputError, match=rf"{bad}:1: id 9999 is not in the fold"):
        emobox.prepare(emobox_dir, 1, root, tmp_path / "d", dev_list=bad)


def test_few_speakers_need_dev_by_utterance(crema_copy, tmp_path):
    root, emobox_dir, _ = crema_copy
    stm = emobox_dir / "data.seg.wrd.stm"
    stm.write_text(re.sub(r"spk=[^,]*", "spk=solo", stm.read_text()))
    with pytest.raises(
        MeritInputError, match=r"1 train candidates.*--dev_by utterance"
    ):
        emobox.prepare(emobox_dir, 1, root, tmp_path / "d")
    emobox.prepare(emobox_dir, 1, root, tmp_path / "d", dev_by="utterance")


def test_cli(crema, tmp_path, capsys):
    root, emobox_dir, _ = crema
    out = tmp_path / "data"
    merit_emobox_data.main([
        "--emobox_dir", str(emobox_dir), "--corpus_dir", str(root),
        "--outdir", str(out), "--class_map", "ANG=A,SAD=S,HAP=H,NEU=N",
    ])  # fmt: skip
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["set", "speakers", "A", "S", "H", "N", "excluded",
                                "total"]  # fmt: skip
    assert [r.split()[0] for r in table[1:]] == ["train", "dev", "test"]
    with pytest.raises(SystemExit, match=r"merit_emobox_data: error: .*fold 2 has no"):
        merit_emobox_data.main(["--emobox_dir", str(emobox_dir), "--fold", "2",
                                "--corpus_dir", str(root)])  # fmt: skip


def _run(cmd, cwd, env):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return out


def test_crema_d_data_sh(crema, tmp_path):
    """--emobox_dir of local/data.sh, --classes translated to the class map."""
    root, emobox_dir, sets = crema
    recipe = copy_recipe(REPO / "egs2" / "crema_d" / "merit1", tmp_path / "r")
    env = dict(os.environ, MERIT_PYTHON=sys.executable, CREMA_D=str(root))
    _run(["local/data.sh", "--emobox_dir", str(emobox_dir), "--classes", "6",
          "--seed", "1"], recipe, env)  # fmt: skip
    data = recipe / "data"
    assert (data / "emotion_list").read_text().split() == list("ASHFDN")
    assert set(read_kaldi(data / "test" / "wav.scp")) == {
        _crema_key(n) for n in sets["test"]
    }
    assert (data / "dev_list.txt").is_file()
    assert not (data / "actor_split.txt").exists()


def test_iemocap_run_sh_with_emobox_from_db_sh(iemocap, tmp_path):
    """EMOBOX_IEMOCAP of db.sh: run.sh's per-fold --fold K --outdir data/foldK
    prepare EmoBox's fold K."""
    root, emobox_dir, kept = iemocap
    recipe = copy_recipe(REPO / "egs2" / "iemocap" / "merit1", tmp_path / "r")
    env = dict(os.environ, MERIT_PYTHON=sys.executable, IEMOCAP=str(root),
               EMOBOX_IEMOCAP=str(emobox_dir))  # fmt: skip
    _run(["./run.sh", "--folds", "3", "--stage", "1", "--stop_stage", "1",
          "--nj", "1"], recipe, env)  # fmt: skip
    data = recipe / "data" / "fold3"
    assert "corpus=iemocap fold=3" in (data / "emobox_fold").read_text()
    test = read_kaldi(data / "test" / "emotion")
    assert set(test) == {f"iemocap-{u.utt}" for u in kept if u.session == 3}
    assert (data / "emotion_list").read_text().split() == ["A", "S", "H", "N"]
