"""The mini recipe's generated corpus (its local/make_mini_msp_podcast.py) and noise
(local/make_mini_noise.py): MSP-Podcast's layout, determinism, and that the real
data preparation reads it. Needs espeak-ng (CI installs it: .ci/install.sh)."""

import csv
import hashlib
import json
import logging
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile
from merit_testing import MSP_LOCAL, load_local

from espnet2_merit.utils.datadir import read_kaldi

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install -y espeak-ng sox)",
)


mini = load_local("make_mini_msp_podcast")
noise = load_local("make_mini_noise")
msp = load_local("msp_podcast_data", MSP_LOCAL)

NUMS = dict(num_train=24, num_dev=8, num_test=8)
NAME = re.compile(r"^MSP-PODCAST_\d{4}_\d{4}\.wav$")
# Voice variants with breath noise, which espeak-ng draws from an unseeded rand().
BREATH = ("+f2", "+f3", "+f5")
# The mini recipe's MSP-PODCAST_1751_0001 (seed 0): the utterance that differed.
UTT_1751_0001 = ("en-gb-scotland+f3", "The report is due at the end of the week.")
POOL = 6  # --num_unlabelled of the pooled corpus
LABELS = ("EmoClass", "EmoAct", "EmoVal", "EmoDom")
# (seed, nums) -> sha256 (its start) of plan()'s jobs and rows and plan_detailed()'s
# rows (_plan_digest) as the generator drew them before --num_unlabelled existed: a
# corpus made then stays as it is.
PLAN_DIGESTS = {
    (3, (24, 8, 8)): "03978a70cd502379",
    (0, (160, 40, 60)): "f7217d1196e4af4f",
}


def _rows(root: Path):
    with open(root / "Labels" / "labels_consensus.csv", newline="") as f:
        return list(csv.DictReader(f))


def _detailed(root: Path):
    """(FileName, EmoDetail parts) of labels_detailed.csv."""
    with open(root / "Labels" / "labels_detailed.csv", newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == ["FileName", "EmoDetail"]
        return [
            (name, [p.strip() for p in detail.split(";")]) for name, detail in reader
        ]


def _files(root: Path):
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _plan_digest(seed, nums, **kwargs) -> str:
    jobs, rows = mini.plan(Path("/corpus"), nums, seed, **kwargs)
    h = hashlib.sha256(repr(jobs).encode())
    h.update("\n".join(rows).encode())
    h.update("\n".join(mini.plan_detailed(rows, seed)).encode())
    return h.hexdigest()[:16]


def _first_run(monkeypatch, home: Path) -> None:
    """The environment of espeak-ng's first run on a fresh machine: libpulse (which
    espeak-ng loads) finds no runtime directory under HOME, so, unless told one
    (make_mini_msp_podcast.espeak_env), it makes ``$TMPDIR/pulse-*`` with rand(),
    the generator espeak-ng's breath noise comes from. Later runs with this HOME
    find the directory."""
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(home / "tmp"))
    for name in ("XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def root(tmp_path_factory, home):
    """The corpus as a first run on a fresh machine makes it, with 2 jobs."""
    out = tmp_path_factory.mktemp("mini") / "corpus"
    with pytest.MonkeyPatch.context() as monkeypatch:
        _first_run(monkeypatch, home)
        mini.generate(out, **NUMS, seed=3, nj=2)
    return out


@pytest.fixture(scope="module")
def pooled(tmp_path_factory):
    """The corpus of ``root`` with an unlabelled Test3 pool of POOL utterances."""
    out = tmp_path_factory.mktemp("mini") / "pooled"
    mini.generate(out, **NUMS, seed=3, nj=2, num_unlabelled=POOL)
    return out


def test_layout(root):
    header = (root / "Labels" / "labels_consensus.csv").read_text().splitlines()[0]
    assert header == "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"
    rows = _rows(root)
    wavs = sorted(p.name for p in (root / "Audios").iterdir())
    assert wavs == sorted(r["FileName"] for r in rows)
    assert all(NAME.match(w) for w in wavs)
    assert [r["FileName"] for r in rows] == sorted(r["FileName"] for r in rows)
    by_split = {}
    for r in rows:
        by_split.setdefault(r["Split_Set"], []).append(r)
        assert all(1 <= float(r[a]) <= 7 for a in ("EmoAct", "EmoVal", "EmoDom"))
        assert r["Gender"] in ("Male", "Female")
    assert set(by_split) == {"Train", "Development", "Test1"}
    for split, num in zip(("Train", "Development", "Test1"), NUMS.values()):
        codes = [r["EmoClass"] for r in by_split[split]]
        assert sum(c in "ASHN" for c in codes) == num
        assert {"A", "S", "H", "N"} <= set(codes)
        assert any(c in ("O", "X") for c in codes), split
    assert any(r["SpkrID"] == "Unknown" for r in rows)
    # Speakers (the voice behind a file name's first number) never cross splits.
    speakers = {
        s: {r["FileName"].split("_")[1] for r in rs} for s, rs in by_split.items()
    }
    assert not speakers["Train"] & (speakers["Development"] | speakers["Test1"])
    assert not speakers["Development"] & speakers["Test1"]
    for w in wavs:
        info = soundfile.info(str(root / "Audios" / w))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 1.5 <= info.frames / 16000 <= 3.5


def test_detailed_labels(root):
    """labels_detailed.csv (MSP-Podcast 1.11+): five annotators per utterance, some
    disagreement, empty and absent secondary fields, a missing primary."""
    rows = _detailed(root)
    per_file = Counter(name for name, _ in rows)
    assert per_file == {r["FileName"]: mini.VOTERS for r in _rows(root)}
    for name, parts in rows:
        assert parts[0].startswith("WORKER") and parts[-1] == ""
        assert [p[:2] for p in parts[-4:-1]] == ["A:", "V:", "D:"]
        assert len(parts) in (6, 7)  # without / with the secondary field
    workers = {name: {parts[0] for n, parts in rows if n == name} for name in per_file}
    assert all(len(w) == mini.VOTERS for w in workers.values())  # distinct
    primaries = Counter(parts[1] for _, parts in rows)
    assert primaries[""] >= 1  # a missing vote
    assert any(p.startswith("Other-") for p in primaries)
    assert all(p in msp.PRIMARY_CODES or p.startswith("Other") for p in primaries if p)
    assert any(len(parts) == 7 and parts[2] == "" for _, parts in rows)  # empty
    assert any(len(parts) == 6 for _, parts in rows)  # absent
    assert any(len(parts) == 7 and "," in parts[2] for _, parts in rows)
    # Votes give the consensus class the plurality (X: no plurality), not always
    # unanimously.
    votes = msp.read_votes(root / "Labels" / "labels_detailed.csv")
    unanimous = 0
    for r in _rows(root):
        top = votes.counts[r["FileName"][: -len(".wav")]].most_common()
        if r["EmoClass"] == "X":
            assert top[0][1] == top[1][1], (r, top)
        else:
            assert top[0][0] == r["EmoClass"], (r, top)
            assert len(top) == 1 or top[1][1] < top[0][1], (r, top)
            unanimous += len(top) == 1
    assert 0 < unanimous < len(_rows(root))


def test_same_seed_same_bytes_whatever_nj(root, home, tmp_path, monkeypatch):
    # The first job (each worker's first synthesis is espeak-ng's first run there)
    # has a breath voice, which the fresh HOME of ``root`` changed before the fix.
    first = mini.plan(root, tuple(NUMS.values()), seed=3)[0][0]
    assert first.voice.endswith(BREATH), first
    _first_run(monkeypatch, home)  # the same HOME again: not a first run now
    again = tmp_path / "again"
    mini.generate(again, **NUMS, seed=3, nj=1)
    assert _files(again) == _files(root)
    other = tmp_path / "other"
    mini.generate(other, num_train=4, num_dev=1, num_test=1, seed=4)
    assert (other / "Labels" / "labels_consensus.csv").read_bytes() != (
        root / "Labels" / "labels_consensus.csv"
    ).read_bytes()


def test_espeak_same_samples_on_a_first_run(tmp_path, monkeypatch):
    """espeak-ng's breath noise does not depend on libpulse's runtime directory
    (before the fix, the first run with a new HOME gave other samples)."""
    args = (*UTT_1751_0001, 12, 88, 165)
    _first_run(monkeypatch, tmp_path / "a")
    first = mini.espeak(*args)
    assert np.array_equal(mini.espeak(*args), first)  # the directory exists now
    _first_run(monkeypatch, tmp_path / "b")
    monkeypatch.chdir(tmp_path)
    assert np.array_equal(mini.espeak(*args), first)


def test_rerun_skips_and_new_options_regenerate(tmp_path, caplog):
    out = tmp_path / "c"
    mini.generate(out, num_train=4, num_dev=1, num_test=1, seed=0)
    first = sorted(p.name for p in (out / "Audios").iterdir())
    mtime = (out / "Audios" / first[0]).stat().st_mtime_ns
    mini.generate(out, num_train=4, num_dev=1, num_test=1, seed=0)
    assert (out / "Audios" / first[0]).stat().st_mtime_ns == mtime
    mini.generate(out, num_train=2, num_dev=1, num_test=1, seed=1)
    listed = {r["FileName"] for r in _rows(out)}
    assert {p.name for p in (out / "Audios").iterdir()} == listed  # no stale files


def test_classes_differ_in_loudness(root):
    """Prosody carries the class: mean speech level orders S < N < A."""
    level = {c: [] for c in "ASHN"}
    for r in _rows(root):
        if r["EmoClass"] in level:
            wav, _ = soundfile.read(str(root / "Audios" / r["FileName"]))
            frames = wav[: len(wav) // 160 * 160].reshape(-1, 160)
            db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
            level[r["EmoClass"]].append(db[db > db.max() - 30].mean())
    mean = {c: np.mean(v) for c, v in level.items()}
    assert mean["S"] < mean["N"] < mean["A"]


def test_data_prep_reads_it(root, tmp_path):
    summary = msp.prepare(root, tmp_path / "data", classes=4)
    assert list(summary) == ["train", "dev", "test1"]
    for name, num in zip(summary, NUMS.values()):
        assert sum(summary[name][c] for c in "ASHN") == num
        assert sum(n for k, n in summary[name].items() if k.startswith("excl")) >= 1
        wav_scp = read_kaldi(tmp_path / "data" / name / "wav.scp")
        assert all(Path(p).is_file() for p in wav_scp.values())
    spk = read_kaldi(tmp_path / "data" / "train" / "utt2spk")
    assert any(s.startswith("unk_") for s in spk.values())
    for name in summary:
        emotion = read_kaldi(tmp_path / "data" / name / "emotion")
        votes = read_kaldi(tmp_path / "data" / name / "emotion_votes")
        assert list(votes) == list(emotion)
        for utt, code in emotion.items():
            counts = {c: int(n) for c, n in (v.split(":") for v in votes[utt].split())}
            assert max(counts, key=counts.get) == code
            assert mini.VOTERS - 1 <= sum(counts.values()) <= mini.VOTERS


def test_unlabelled_pool(pooled, root):
    """--num_unlabelled: Test3 rows with the labels withheld (empty fields, no
    annotations), speakers (ids and voices) of their own; the rest as without it."""
    rows = _rows(pooled)
    pool = [r for r in rows if r["Split_Set"] == "Test3"]
    assert len(pool) == POOL
    assert all(r[k] == "" for r in pool for k in LABELS)
    assert all(r["Gender"] in ("Male", "Female") for r in pool)
    assert all(r["SpkrID"] for r in pool)
    lines = (pooled / "Labels" / "labels_consensus.csv").read_text().splitlines()
    assert all(line.count(",") == 7 for line in lines)  # 8 fields, header's count
    wavs = sorted(p.name for p in (pooled / "Audios").iterdir())
    assert wavs == sorted(r["FileName"] for r in rows)
    for r in pool:
        info = soundfile.info(str(pooled / "Audios" / r["FileName"]))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    spk = {r["FileName"].split("_")[1] for r in pool}
    others = {r["FileName"].split("_")[1] for r in rows if r not in pool}
    assert len(spk) == mini.UNLABELLED_SPLIT[1] and not spk & others
    jobs = mini.plan(pooled, tuple(NUMS.values()), 3, num_unlabelled=POOL)[0]
    pool_names = {r["FileName"] for r in pool}
    pool_voices = {j.voice for j in jobs if Path(j.path).name in pool_names}
    other_voices = {j.voice for j in jobs if Path(j.path).name not in pool_names}
    assert len(pool_voices) == len(spk) and not pool_voices & other_voices
    # Nothing else changed: labelled rows, annotations (none for the pool), audio.
    assert [r for r in rows if r not in pool] == _rows(root)
    detailed = pooled / "Labels" / "labels_detailed.csv"
    assert (
        detailed.read_bytes() == (root / "Labels" / "labels_detailed.csv").read_bytes()
    )
    assert not {name for name, _ in _detailed(pooled)} & pool_names
    after = _files(pooled)
    assert all(after[p] == b for p, b in _files(root).items() if p.suffix == ".wav")
    done = json.loads((pooled / ".done").read_text())
    assert done["num_unlabelled"] == POOL


def test_data_prep_writes_the_pool_unlabelled(pooled, tmp_path):
    data = tmp_path / "data"
    splits = "Train,Development,Test1,Test3"
    summary = msp.prepare(pooled, data, classes=4, splits=splits)
    assert list(summary) == ["train", "dev", "test1", "test3"]
    assert summary["test3"] == {"unlabelled": POOL}
    pool = sorted(
        r["FileName"][:-4] for r in _rows(pooled) if r["Split_Set"] == "Test3"
    )
    for name in ("wav.scp", "utt2spk", "utt2gender"):
        assert sorted(read_kaldi(data / "test3" / name)) == pool
    for name in ("emotion", "emotion_attr", "emotion_votes"):
        assert not (data / "test3" / name).exists()
        assert (data / "test1" / name).is_file()
    assert not read_kaldi(data / "test3" / "excluded")


def test_no_pool_is_the_corpus_of_before(tmp_path):
    """--num_unlabelled 0 (the default) draws and stamps as the generator did
    before the option, so corpora made then are neither changed nor regenerated."""
    for (seed, nums), digest in PLAN_DIGESTS.items():
        assert _plan_digest(seed, nums) == digest
        assert _plan_digest(seed, nums, num_unlabelled=0) == digest
        assert _plan_digest(seed, nums, num_unlabelled=2) != digest
    mini.generate(tmp_path / "a", num_train=4, num_dev=1, num_test=1, seed=0)
    mini.generate(
        tmp_path / "b", num_train=4, num_dev=1, num_test=1, seed=0, num_unlabelled=0
    )
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    stamp = (tmp_path / "b" / ".done").read_text()
    assert stamp == '{"nums": [4, 1, 1], "seed": 0, "version": 2}'
    # A pool added later regenerates, with the other files as they were.
    mini.generate(
        tmp_path / "b", num_train=4, num_dev=1, num_test=1, seed=0, num_unlabelled=2
    )
    after = _files(tmp_path / "b")
    changed = {p for p, b in _files(tmp_path / "a").items() if after[p] != b}
    assert changed == {Path(".done"), Path("Labels") / "labels_consensus.csv"}
    assert len(after) == len(_files(tmp_path / "a")) + 4  # 2 wavs, 2 transcripts
    with pytest.raises(mini.MeritInputError, match="num_unlabelled"):
        mini.generate(tmp_path / "c", num_unlabelled=-1)


def test_detailed_labels_added_to_an_older_corpus(tmp_path, caplog):
    """A corpus made before labels_detailed.csv existed gets it on a re-run,
    without synthesis; the rest stays as it was."""
    out = tmp_path / "c"
    mini.generate(out, num_train=4, num_dev=1, num_test=1, seed=0)
    first = _files(out)
    wav = next((out / "Audios").iterdir())
    mtime = wav.stat().st_mtime_ns
    (out / "Labels" / "labels_detailed.csv").unlink()
    with caplog.at_level(logging.INFO):
        mini.generate(out, num_train=4, num_dev=1, num_test=1, seed=0)
    assert "wrote the missing" in caplog.text
    assert _files(out) == first
    assert wav.stat().st_mtime_ns == mtime  # not synthesised again


def test_noise(tmp_path):
    out = tmp_path / "noise"
    files = noise.generate(out, num_per_type=2, seed=1, nj=2)
    assert sorted(files) == sorted(noise.NOISE_TYPES)
    assert noise.UNSEEN_TYPE in files
    for kind, paths in files.items():
        assert sorted(p.name for p in (out / kind).iterdir()) == [
            f"{kind}_000.wav", f"{kind}_001.wav",
        ]  # fmt: skip
        for p in paths:
            wav, fs = soundfile.read(p)
            assert fs == 16000 and wav.ndim == 1 and 4.0 <= len(wav) / fs <= 8.0
            assert 0.02 < np.sqrt(np.mean(wav**2)) < 0.1 and np.abs(wav).max() <= 0.9
    again = tmp_path / "again"
    noise.generate(again, num_per_type=2, seed=1, nj=1)
    assert _files(again) == _files(out)
    third = tmp_path / "third"
    noise.generate(third, num_per_type=1, types="white,pink", seed=2)
    assert sorted(p.name for p in third.iterdir()) == [".done", "pink", "white"]
    white = (third / "white" / "white_000.wav").read_bytes()
    assert white != (out / "white" / "white_000.wav").read_bytes()


def test_transcripts(root, tmp_path, caplog):
    """Transcripts/<utt>.txt: the sentence each utterance speaks (MSP-Podcast's
    layout), read by data preparation into ``text``; a corpus made before them
    gets them on a re-run without new audio."""
    wavs = sorted(p.stem for p in (root / "Audios").iterdir())
    txts = sorted(p.stem for p in (root / "Transcripts").iterdir())
    assert txts == wavs
    spoken = {s + e for s in mini.SENTENCES for e in ".!"}
    for stem in txts:
        assert (root / "Transcripts" / f"{stem}.txt").read_text().strip() in spoken
    msp.prepare(root, tmp_path / "data", classes=4)
    text = read_kaldi(tmp_path / "data" / "train" / "text")
    assert list(text) == list(read_kaldi(tmp_path / "data" / "train" / "wav.scp"))
    out = tmp_path / "old"
    mini.generate(out, num_train=4, num_dev=1, num_test=1, seed=0)
    first = _files(out)
    shutil.rmtree(out / "Transcripts")
    with caplog.at_level(logging.INFO):
        mini.generate(out, num_train=4, num_dev=1, num_test=1, seed=0)
    assert "wrote the missing" in caplog.text
    assert _files(out) == first
