"""ICBHI 2017 data preparation (egs2/icbhi2017/merit1/local/icbhi_data.py) on the
recipe's miniature in the release's layout (local/make_mini_icbhi.py)."""

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
from espnet2_merit.recipe.dev_split import draw_dev
from espnet2_merit.utils.datadir import read_kaldi

ICBHI_LOCAL = "egs2/icbhi2017/merit1/local"
icbhi = load_local("icbhi_data", ICBHI_LOCAL)
mini = load_local("make_mini_icbhi", ICBHI_LOCAL)

PATIENTS = 6
# round(0.4 * 6) = 2 test patients; of the 4 train patients round(0.2 * 4) = 1 is
# dev. Every patient has 2 recordings of 4 cycles, one per class.
SET_PATIENTS = {"train": 3, "dev": 1, "test": 2}
PER_PATIENT = mini.RECORDINGS_PER_PATIENT * mini.CYCLES_PER_RECORDING // 4
FS = 16000


@pytest.fixture(scope="module")
def mini_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("icbhi") / "mini"
    mini.generate(out, patients=PATIENTS, seed=0)
    return out


@pytest.fixture(scope="module")
def prepared(mini_corpus, tmp_path_factory):
    """(outdir, summary) of stage 1 with the default options."""
    out = tmp_path_factory.mktemp("icbhi_data") / "data"
    return out, icbhi.prepare(mini_corpus, out)


@pytest.fixture
def corpus(mini_corpus, tmp_path) -> Path:
    """A copy of the miniature that a test may damage."""
    return Path(shutil.copytree(mini_corpus, tmp_path / "corpus"))


def _audio(root: Path) -> Path:
    return root / icbhi.AUDIO_DIR


def _stems(root: Path):
    return sorted(p.stem for p in _audio(root).glob("*.wav"))


def _tree(d: Path):
    return {
        p.relative_to(d).as_posix(): p.read_bytes() for p in d.rglob("*") if p.is_file()
    }


def _split(root: Path):
    lines = (root / icbhi.SPLIT_FILE).read_text().splitlines()
    return dict(line.split("\t") for line in lines)


def _cycles(out: Path):
    lines = (out / icbhi.CYCLES_FILE).read_text().splitlines()
    header = lines[0].split("\t")
    return {r[0]: dict(zip(header, r)) for r in (x.split("\t") for x in lines[1:])}


def test_miniature_layout(mini_corpus, tmp_path):
    stems = _stems(mini_corpus)
    assert len(stems) == PATIENTS * mini.RECORDINGS_PER_PATIENT
    names = sorted(p.name for p in _audio(mini_corpus).iterdir())
    assert names == sorted([f"{s}.wav" for s in stems] + [f"{s}.txt" for s in stems])
    rates, devices = Counter(), Counter()
    for stem in stems:
        patient, rec, location, mode, device = icbhi.parse_stem(Path(stem + ".wav"))
        info = soundfile.info(str(_audio(mini_corpus) / f"{stem}.wav"))
        assert (info.channels, info.subtype) == (1, "PCM_16")
        rates[info.samplerate] += 1
        devices[device] += 1
        cycles = icbhi.read_cycles(_audio(mini_corpus) / f"{stem}.txt")
        assert sorted(c.label for c in cycles) == sorted(icbhi.CLASSES)
        assert cycles[-1].end < info.frames / info.samplerate
        line = (_audio(mini_corpus) / f"{stem}.txt").read_text().splitlines()[0]
        assert len(line.split("\t")) == 4 and line.split("\t")[2] in "01"
    assert set(rates) == {4000, 10000, 44100}
    assert set(devices) == set(icbhi.DEVICES)
    split = _split(mini_corpus)
    assert sorted(split) == stems
    sides = {}
    for stem, name in split.items():
        sides.setdefault(stem[:3], set()).add(name)
    assert all(len(s) == 1 for s in sides.values())  # patient-wise
    assert Counter(s.pop() for s in sides.values()) == {"train": 4, "test": 2}
    demo = (mini_corpus / icbhi.DEMOGRAPHICS_FILE).read_text().splitlines()
    assert len(demo) == PATIENTS and all(len(x.split("\t")) == 6 for x in demo)
    assert sorted(icbhi.read_demographics(mini_corpus / icbhi.DEMOGRAPHICS_FILE)) == (
        sorted(sides)
    )
    # A seed gives the same files; a re-run with the same options skips.
    a, b = tmp_path / "a", tmp_path / "b"
    mini.generate(a, patients=2, seed=3)
    mini.generate(b, patients=2, seed=3)
    assert _tree(a) == _tree(b)
    stamp = (a / ".done").stat().st_mtime_ns
    mini.generate(a, patients=2, seed=3)
    assert (a / ".done").stat().st_mtime_ns == stamp
    mini.generate(a, patients=3, seed=3)  # other options regenerate
    assert len(_stems(a)) == 3 * mini.RECORDINGS_PER_PATIENT
    with pytest.raises(MeritInputError, match="--patients 1"):
        mini.generate(tmp_path / "c", patients=1)


def test_sets_counts_and_cycles(mini_corpus, prepared):
    out, summary = prepared
    assert list(summary) == ["train", "dev", "test"]
    for name, n in SET_PATIENTS.items():
        assert summary[name] == {
            "patients": n, "recordings": n * mini.RECORDINGS_PER_PATIENT,
            "N": n * PER_PATIENT, "C": n * PER_PATIENT, "W": n * PER_PATIENT,
            "B": n * PER_PATIENT,
        }  # fmt: skip
    assert (out / "emotion_list").read_text().split() == ["N", "C", "W", "B"]
    split = _split(mini_corpus)
    sex = icbhi.read_demographics(mini_corpus / icbhi.DEMOGRAPHICS_FILE)
    dev = (out / "dev_patients.txt").read_text().split()
    table = _cycles(out)
    seen_patients, seen_utts = set(), set()
    for name in icbhi.SETS:
        d = out / name
        emotion = read_kaldi(d / "emotion")
        for f in ("wav.scp", "utt2spk", "utt2gender"):
            assert list(read_kaldi(d / f)) == list(emotion), f
        spk = read_kaldi(d / "utt2spk")
        patients = set(spk.values())
        assert not patients & seen_patients  # patient-disjoint
        seen_patients |= patients
        assert (patients == set(dev)) == (name == "dev")
        gender = read_kaldi(d / "utt2gender")
        for utt, wav in read_kaldi(d / "wav.scp").items():
            row = table[utt]
            stem, number = utt.rsplit("_c", 1)
            assert (row["recording"], int(number)) == (stem, int(row["cycle"]))
            assert split[stem] == ("test" if name == "test" else "train")
            assert spk[utt] == stem[:3] == row["patient"] and row["set"] == name
            assert gender[utt] == sex[spk[utt]]
            # The class of the annotation line.
            c = icbhi.read_cycles(_audio(mini_corpus) / f"{stem}.txt")[int(number) - 1]
            assert emotion[utt] == c.label == row["class"]
            assert (row["crackles"], row["wheezes"]) == (c.crackles, c.wheezes)
            # Resampled to 16 kHz, cut at the annotated times.
            assert Path(wav) == out.resolve() / "cycle_wav" / name / f"{utt}.wav"
            info = soundfile.info(wav)
            assert (info.samplerate, info.channels) == (FS, 1)
            assert info.frames == round(c.end * FS) - round(c.start * FS)
            assert info.frames == int(row["samples"])
        seen_utts |= set(emotion)
    assert seen_utts == set(table)
    assert len(table) == PATIENTS * mini.RECORDINGS_PER_PATIENT * 4
    native = {row["recording"]: int(row["native_fs"]) for row in table.values()}
    assert set(native.values()) == {4000, 10000, 44100}
    assert not list(out.rglob("*.tmp"))
    lines = icbhi.format_summary(summary).splitlines()
    assert lines[0].split() == ["set", "patients", "recs", "N", "C", "W", "B", "total"]
    assert lines[1].split() == ["train", "3", "6", "6", "6", "6", "6", "24"]


def _read(path):
    return soundfile.read(str(path), dtype="int16")[0]


def test_pad_and_fixed_windows(mini_corpus, prepared, tmp_path):
    out, _ = prepared
    natural = {u: _read(w) for u, w in read_kaldi(out / "train" / "wav.scp").items()}
    table = _cycles(out)

    def recording_samples(utt):
        stem = table[utt]["recording"]
        info = soundfile.info(str(_audio(mini_corpus) / f"{stem}.wav"))
        return -(-info.frames * FS // info.samplerate)  # resample_poly's length

    for pad in (0.2, 5.0):  # 5 s: clipped to the recording
        d = tmp_path / f"pad{pad}"
        icbhi.prepare(mini_corpus, d, pad_sec=pad)
        for utt, wav in read_kaldi(d / "train" / "wav.scp").items():
            row = table[utt]
            start, end = float(row["start"]), float(row["end"])
            n = min(recording_samples(utt), round((end + pad) * FS))
            assert soundfile.info(wav).frames == n - max(0, round((start - pad) * FS))
    d = tmp_path / "fixed_repeat"
    icbhi.prepare(mini_corpus, d, fixed_sec=3.0)  # every cycle is 1-2.5 s
    for utt, wav in read_kaldi(d / "train" / "wav.scp").items():
        x, n0 = _read(wav), len(natural[utt])
        assert len(x) == 3 * FS
        assert np.array_equal(x[:n0], natural[utt])
        assert np.array_equal(x[n0:], np.tile(natural[utt], 3)[: 3 * FS - n0])
    d = tmp_path / "fixed_zero"
    icbhi.prepare(mini_corpus, d, fixed_sec=3.0, fixed_pad="zero")
    for utt, wav in read_kaldi(d / "train" / "wav.scp").items():
        x, n0 = _read(wav), len(natural[utt])
        left = (3 * FS - n0) // 2
        assert np.array_equal(x[left : left + n0], natural[utt])
        assert not x[:left].any() and not x[left + n0 :].any()
    d = tmp_path / "fixed_cut"
    icbhi.prepare(mini_corpus, d, fixed_sec=0.9)  # every cycle is longer
    for utt, wav in read_kaldi(d / "train" / "wav.scp").items():
        assert np.array_equal(_read(wav), natural[utt][: round(0.9 * FS)])
    d = tmp_path / "fs8k"
    icbhi.prepare(mini_corpus, d, fs=8000)
    for utt, wav in read_kaldi(d / "dev" / "wav.scp").items():
        row = table[utt]
        info = soundfile.info(wav)
        assert info.samplerate == 8000
        assert info.frames == round(float(row["end"]) * 8000) - round(
            float(row["start"]) * 8000
        )
    with pytest.raises(MeritInputError, match="--fixed_sec 0"):
        icbhi.prepare(mini_corpus, tmp_path / "x", fixed_sec=0.0)
    with pytest.raises(MeritInputError, match="--pad_sec"):
        icbhi.prepare(mini_corpus, tmp_path / "x", pad_sec=-1.0)


def test_dev_draw_is_seeded_and_reproducible(mini_corpus, prepared, tmp_path):
    out, _ = prepared
    again = tmp_path / "again"
    icbhi.prepare(mini_corpus, again, seed=0)
    for name in icbhi.SETS:
        for f in ("emotion", "utt2spk", "utt2gender"):
            assert (again / name / f).read_bytes() == (out / name / f).read_bytes()
    assert _tree(again / "cycle_wav") == _tree(out / "cycle_wav")
    train_patients = sorted(
        p for p in {s[:3] for s, n in _split(mini_corpus).items() if n == "train"}
    )
    draws = {frozenset(draw_dev(train_patients, 0.2, s)) for s in range(8)}
    assert len(draws) > 1 and all(len(d) == 1 for d in draws)
    # The written list gives the same sets whatever the seed; a re-run in place.
    c = tmp_path / "c"
    icbhi.prepare(mini_corpus, c, seed=5, dev_patients=out / "dev_patients.txt")
    assert (c / "dev" / "emotion").read_bytes() == (
        out / "dev" / "emotion"
    ).read_bytes()
    icbhi.prepare(mini_corpus, c, dev_patients=c / "dev_patients.txt")
    assert (c / "dev_patients.txt").read_text() == (
        out / "dev_patients.txt"
    ).read_text()
    test_patient = next(s[:3] for s, n in _split(mini_corpus).items() if n == "test")
    cases = [
        (
            f"{test_patient}\n",
            f":1: patient {test_patient} is not in the official train patients",
        ),
        (
            f"{train_patients[0]}\n{train_patients[0]}\n",
            ":2: patient .* repeats line 1",
        ),
        (
            "".join(f"{p}\n" for p in train_patients),
            "every one of the official train patients .* is in dev",
        ),
        ("\n", "no patients"),
    ]
    for i, (text, match) in enumerate(cases):
        path = tmp_path / f"dev{i}.txt"
        path.write_text(text)
        with pytest.raises(MeritInputError, match=match) as e:
            icbhi.prepare(mini_corpus, tmp_path / "x", dev_patients=path)
        assert str(path) in str(e.value)
    with pytest.raises(MeritInputError, match="--dev_ratio 0"):
        draw_dev(train_patients, 0.0, 0)
    with pytest.raises(MeritInputError, match="leave none for train"):
        draw_dev(train_patients[:1], 0.2, 0)


def test_patient_on_both_sides_is_never_dev(corpus, tmp_path, caplog):
    """Like 156 and 218 of the release: a train patient with a test recording."""
    split = _split(corpus)
    train = sorted({s[:3] for s, n in split.items() if n == "train"})
    moved = next(s for s in sorted(split) if s[:3] == train[0])
    split[moved] = "test"
    (corpus / icbhi.SPLIT_FILE).write_text(
        "".join(f"{s}\t{n}\n" for s, n in sorted(split.items()))
    )
    for seed in range(3):
        out = tmp_path / f"s{seed}"
        with caplog.at_level(logging.WARNING):
            icbhi.prepare(corpus, out, seed=seed)
        assert train[0] not in (out / "dev_patients.txt").read_text().split()
        spk = {n: set(read_kaldi(out / n / "utt2spk").values()) for n in icbhi.SETS}
        assert train[0] in spk["train"] & spk["test"]
        assert not spk["dev"] & (spk["train"] | spk["test"])
    assert "1 patients have recordings in both the official train and test sets" in (
        caplog.text
    )


def _replace_line(txt: Path, number: int, text: str) -> None:
    lines = txt.read_text().splitlines()
    lines[number - 1] = text
    txt.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "line,match",
    [
        ("0.5\t1.0\t0", "expected 4 fields"),
        ("0.5\t1.0\t0\t0\t1", "expected 4 fields"),
        ("0.5\t1.0\t2\t0", "expected flags 0 or 1"),
        ("0.5\t1.0\t0\tyes", "expected flags 0 or 1"),
        ("1.0\t1.0\t0\t0", "end 1.0 is not after start 1.0"),
        ("1.5\t0.5\t1\t1", "end 0.5 is not after start 1.5"),
        ("x\t1.0\t0\t0", "start and end must be numbers"),
        ("-0.5\t1.0\t0\t0", "start >= 0"),
        ("0.5\t99.0\t0\t0", "cycle end 99 s is beyond the recording's length"),
    ],
)
def test_bad_cycle_lines_name_file_and_line(corpus, tmp_path, line, match):
    txt = _audio(corpus) / f"{_stems(corpus)[1]}.txt"
    _replace_line(txt, 2, line)
    with pytest.raises(MeritInputError, match=match) as e:
        icbhi.prepare(corpus, tmp_path / "data")
    assert f"{txt.resolve()}:2:" in str(e.value)


def test_small_overrun_is_tolerated_when_asked(corpus, tmp_path, caplog):
    stem = _stems(corpus)[0]
    info = soundfile.info(str(_audio(corpus) / f"{stem}.wav"))
    duration = info.frames / info.samplerate
    txt = _audio(corpus) / f"{stem}.txt"
    last = len(txt.read_text().splitlines())
    start = float(f"{duration - 0.5:.3f}")
    _replace_line(txt, last, f"{start:.3f}\t{duration + 0.02:.3f}\t0\t0")
    with pytest.raises(MeritInputError, match=f"{stem}.txt:{last}: cycle end"):
        icbhi.prepare(corpus, tmp_path / "data")
    with caplog.at_level(logging.WARNING):
        icbhi.prepare(corpus, tmp_path / "data", max_overrun_sec=0.05)
    assert "1 cycles end after their recording" in caplog.text
    wavs = {}
    for name in icbhi.SETS:
        wavs.update(read_kaldi(tmp_path / "data" / name / "wav.scp"))
    n = -(-info.frames * FS // info.samplerate)
    assert soundfile.info(wavs[f"{stem}_c{last:03d}"]).frames == n - round(start * FS)


def _write_split(corpus: Path, lines):
    path = corpus / icbhi.SPLIT_FILE
    path.write_text("\n".join(lines) + "\n")
    return path


def test_split_file_errors(corpus, tmp_path):
    lines = (corpus / icbhi.SPLIT_FILE).read_text().splitlines()
    stems = [x.split("\t")[0] for x in lines]
    absent = "225_1b1_Tc_sc_Litt3200"
    cases = [
        (lines[1:], f"1 recordings with audio .* are not listed: {stems[0]}"),
        (
            lines + [f"{absent}\ttrain"],
            f"no audio .*{absent} \\(line {len(lines) + 1}\\)",
        ),
        (lines + [lines[2]], f":{len(lines) + 1}: {stems[2]} repeats line 3"),
        (lines[:1] + [f"{stems[1]}\tvalid"] + lines[2:], ":2: .*expected"),
        (lines[:3] + [stems[3]] + lines[4:], ":4: .*expected"),
        ([x.replace("\ttest", "\ttrain") for x in lines], "no recording in test"),
    ]
    for i, (text, match) in enumerate(cases):
        path = _write_split(corpus, text)
        with pytest.raises(MeritInputError, match=match) as e:
            icbhi.prepare(corpus, tmp_path / "data")
        assert str(path) in str(e.value), match
    other = tmp_path / "elsewhere.txt"
    other.write_text("\n".join(lines) + "\n")
    (corpus / icbhi.SPLIT_FILE).unlink()
    with pytest.raises(MeritInputError, match="--split_file .*: no such file"):
        icbhi.prepare(corpus, tmp_path / "data")
    icbhi.prepare(corpus, tmp_path / "data", split_file=other)  # --split_file
    # Inside the audio directory, as some copies of the release have it.
    shutil.move(other, _audio(corpus) / icbhi.SPLIT_FILE)
    icbhi.prepare(corpus, tmp_path / "data")


def test_device_only_difference_is_paired(corpus, tmp_path, caplog):
    """The release's 226_1b1_Pl_sc: listed as Meditron, its audio LittC2SE."""
    stem = _stems(corpus)[0]
    renamed = (
        stem.rsplit("_", 1)[0]
        + "_"
        + ("Meditron" if not stem.endswith("Meditron") else "LittC2SE")
    )
    for ext in (".wav", ".txt"):
        (_audio(corpus) / f"{stem}{ext}").rename(_audio(corpus) / f"{renamed}{ext}")
    with caplog.at_level(logging.WARNING):
        icbhi.prepare(corpus, tmp_path / "data")
    assert "differs only in the device" in caplog.text
    assert f"{stem} (line 1) -> {renamed}.wav" in caplog.text
    utts = set()
    for name in icbhi.SETS:
        utts |= set(read_kaldi(tmp_path / "data" / name / "emotion"))
    assert f"{renamed}_c001" in utts and f"{stem}_c001" not in utts


@pytest.mark.parametrize(
    "name,match",
    [
        ("101_1b1_Al_sc_Foo.wav", "unknown device 'Foo'"),
        ("101_1b1_Xx_sc_Meditron.wav", "unknown chest location 'Xx'"),
        ("101_1b1_Al_zz_Meditron.wav", "unknown acquisition mode 'zz'"),
        ("999_1b1_Al_sc_Meditron.wav", "patient 999 is outside ICBHI's 101-226"),
        ("101_1b1_Al_Meditron.wav", "not an ICBHI recording name"),
    ],
)
def test_bad_file_names_name_the_file(corpus, tmp_path, name, match):
    src = _audio(corpus) / f"{_stems(corpus)[0]}"
    shutil.copy(src.with_suffix(".wav"), _audio(corpus) / name)
    shutil.copy(src.with_suffix(".txt"), (_audio(corpus) / name).with_suffix(".txt"))
    with pytest.raises(MeritInputError, match=match) as e:
        icbhi.prepare(corpus, tmp_path / "data")
    assert str(_audio(corpus).resolve() / name) in str(e.value)


def test_audio_and_annotation_problems(corpus, tmp_path, caplog):
    stems = _stems(corpus)
    (_audio(corpus) / f"{stems[0]}.txt").unlink()
    with pytest.raises(MeritInputError, match=f"{stems[0]}.wav: no annotation file"):
        icbhi.prepare(corpus, tmp_path / "data")
    (_audio(corpus) / f"{stems[0]}.wav").unlink()  # now a stray .txt, both gone
    _write_split(
        corpus, [x for x in (corpus / icbhi.SPLIT_FILE).read_text().splitlines()
                 if not x.startswith(stems[0])]
    )  # fmt: skip
    (_audio(corpus) / "filename_format.txt").write_text("x")
    (_audio(corpus) / "._101_1b1_Al_sc_Meditron.wav").write_bytes(b"\x00\x05")
    with caplog.at_level(logging.WARNING):
        icbhi.prepare(corpus, tmp_path / "data")
    assert "ignored 2 entries that are not recordings" in caplog.text
    (_audio(corpus) / f"{stems[1]}.wav").write_bytes(b"RIFF\x00\x00not a wav")
    with pytest.raises(MeritInputError, match=f"{stems[1]}.wav: cannot read audio"):
        icbhi.prepare(corpus, tmp_path / "data")
    soundfile.write(_audio(corpus) / f"{stems[1]}.wav", np.zeros(0), 4000)
    with pytest.raises(MeritInputError, match=f"{stems[1]}.wav: no samples"):
        icbhi.prepare(corpus, tmp_path / "data")
    with pytest.raises(MeritInputError, match="ICBHI_final_database: no such dir"):
        (tmp_path / "empty").mkdir()
        icbhi.prepare(tmp_path / "empty", tmp_path / "data")
    with pytest.raises(MeritInputError, match="--corpus_dir .*: no such directory"):
        icbhi.prepare(tmp_path / "nowhere", tmp_path / "data")


def test_demographics(corpus, tmp_path, caplog):
    out = tmp_path / "data"
    demo = corpus / icbhi.DEMOGRAPHICS_FILE
    rows = demo.read_text().splitlines()
    first, second = rows[0].split("\t")[0], rows[1].split("\t")[0]
    rows[0] = "\t".join([first, "NA", "NA", "NA", "NA", "NA"])  # like patient 223
    demo.write_text("\n".join(rows[:1] + rows[2:]) + "\n")  # second: no row
    with caplog.at_level(logging.INFO):
        icbhi.prepare(corpus, out)
    assert f"no row for 1 patients with audio (their sex is Unknown): {second}" in (
        caplog.text
    )
    gender = {}
    spk = {}
    for name in icbhi.SETS:
        gender.update(read_kaldi(out / name / "utt2gender"))
        spk.update(read_kaldi(out / name / "utt2spk"))
    by_patient = {spk[u]: g for u, g in gender.items()}
    assert by_patient[first] == by_patient[second] == "Unknown"
    assert set(by_patient.values()) <= {"M", "F", "Unknown"}
    demo.write_text("\n".join(rows[:1] + ["bad line"] + rows[2:]) + "\n")
    with pytest.raises(MeritInputError, match=":2: 'bad line': expected") as e:
        icbhi.prepare(corpus, out)
    assert str(demo) in str(e.value)
    demo.write_text(rows[1].replace("\tM\t", "\tX\t").replace("\tF\t", "\tX\t") + "\n")
    with pytest.raises(MeritInputError, match=":1: sex 'X'"):
        icbhi.prepare(corpus, out)
    demo.write_text(f"{rows[1]}\n{rows[1]}\n")
    with pytest.raises(MeritInputError, match=f":2: patient {second} repeats line 1"):
        icbhi.prepare(corpus, out)
    demo.unlink()
    with caplog.at_level(logging.INFO):
        summary = icbhi.prepare(corpus, out)
    assert "no such file, so no utt2gender" in caplog.text
    for name in icbhi.SETS:  # the one of the first run is removed
        assert not (out / name / "utt2gender").exists()
        assert summary[name]["patients"] == SET_PATIENTS[name]
    with pytest.raises(MeritInputError, match="--demographics .*nowhere: no such"):
        icbhi.prepare(corpus, out, demographics=tmp_path / "nowhere")


def test_cli(mini_corpus, tmp_path, capsys):
    out = tmp_path / "data"
    icbhi.main(["--corpus_dir", str(mini_corpus), "--outdir", str(out)])
    table = capsys.readouterr().out.splitlines()
    assert table[1].split() == ["train", "3", "6", "6", "6", "6", "6", "24"]
    with pytest.raises(SystemExit, match="icbhi_data.py: error: .*nowhere"):
        icbhi.main(["--corpus_dir", str(tmp_path / "nowhere"), "--outdir", str(out)])


def test_data_sh(mini_corpus, tmp_path):
    """The recipe's local/data.sh and db.sh, the corpus root from $ICBHI."""
    recipe = copy_recipe(REPO / "egs2" / "icbhi2017" / "merit1", tmp_path / "r")
    env = dict(os.environ, MERIT_PYTHON=sys.executable, ICBHI=str(mini_corpus))
    env.pop("ICBHI_SPLIT_FILE", None)
    out = subprocess.run(
        ["local/data.sh", "--seed", "1", "--fixed_sec", "2"],
        cwd=recipe, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    data = recipe / "data"
    assert (data / "emotion_list").read_text().split() == ["N", "C", "W", "B"]
    assert out.stdout.splitlines()[0].split()[:2] == ["set", "patients"]
    reference = tmp_path / "ref"
    icbhi.prepare(mini_corpus, reference, seed=1, fixed_sec=2.0)
    for f in ("dev_patients.txt", "train/emotion", "dev/utt2spk", "test/utt2gender"):
        assert (data / f).read_bytes() == (reference / f).read_bytes(), f
    for utt, wav in read_kaldi(data / "test" / "wav.scp").items():
        assert Path(wav).is_relative_to((recipe / "data").resolve())
        assert soundfile.info(wav).frames == 2 * FS
