"""Noise pools (merit_prepare_noise), noise simulation (merit_simulate_noise)
and the mixing functions they use, on tiny generated speech and noise."""

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from merit_testing import REPO, SPARSE_TINY, copy_recipe

from espnet2_merit.bin import merit_prepare_noise as prepare_noise
from espnet2_merit.bin import merit_simulate_noise as simulate_noise
from espnet2_merit.errors import MeritInputError
from espnet2_merit.simulation import noise_pools
from espnet2_merit.simulation.mixing import fit_noise, mix, reverberate
from espnet2_merit.utils.synthetic import voice

FS = 16000
UTTS = [f"spk{i % 2}-utt{i}" for i in range(6)]


def _write(path: Path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(rows)), encoding="utf-8")


def _noise(kind: str, n: int, rng) -> np.ndarray:
    if kind == "white":
        return 0.1 * rng.standard_normal(n)
    if kind == "hum":
        return 0.2 * np.sin(2 * np.pi * 120 * np.arange(n) / FS) + 0.01 * rng.random(n)
    noise = np.convolve(rng.standard_normal(n), np.ones(16) / 16, mode="same")
    return noise * (1 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(n) / FS))


def make_noise_dir(root: Path, kind: str, num: int, seed: int) -> Path:
    """``num`` noise files of 0.3-2 s (shorter and longer than the speech), wav and
    flac, some in a sub-directory."""
    rng = np.random.default_rng(seed)
    for i in range(num):
        sub = root / kind / ("sub" if i % 3 == 0 else "")
        sub.mkdir(parents=True, exist_ok=True)
        ext = "flac" if i % 2 else "wav"
        wav = _noise(kind, int(rng.uniform(0.3, 2.0) * FS), rng)
        soundfile.write(sub / f"{kind}{i:02d}.{ext}", wav, FS, subtype="PCM_16")
    return root / kind


def make_clean_dir(root: Path, gains=None, seconds=(1.0, 1.5), seed=0) -> Path:
    """6 utterances of harmonic speech (PCM_16 wav) with labels."""
    rng = np.random.default_rng(seed)
    gains = gains or [0.3] * len(UTTS)
    wav, emo, spk = [], [], []
    for utt, gain, label in zip(UTTS, gains, "ASHNAS"):
        x = voice(label, rng.uniform(*seconds), FS, rng)
        x = x / np.abs(x).max() * gain
        path = root / "audio" / f"{utt}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, x, FS, subtype="PCM_16")
        wav.append((utt, path))
        emo.append((utt, label))
        spk.append((utt, utt.split("-")[0]))
    _write(root / "wav.scp", wav)
    _write(root / "emotion", emo)
    _write(root / "utt2spk", spk)
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Seen noise types babble/white/hum (10 files each), unseen pink-ish (4), their
    pools, and a clean data dir whose last utterance is loud (its mixtures clip)."""
    root = tmp_path_factory.mktemp("corpus")
    seen = [
        make_noise_dir(root / "noise", k, 10, s)
        for s, k in enumerate(["babble", "white", "hum"])
    ]
    unseen = [make_noise_dir(root / "noise_unseen", "babble", 4, 9)]
    prepare_noise.main(
        [
            "--seen_dirs", " ".join(map(str, seen)),
            "--unseen_dirs", " ".join(map(str, unseen)),
            "--outdir", str(root / "pools"),
            "--dev_ratio", "0.1", "--test_ratio", "0.2", "--seed", "0",
        ]
    )  # fmt: skip
    clean = make_clean_dir(root / "clean", gains=[0.15, 0.1, 0.05, 0.15, 0.12, 0.99])
    return {
        "root": root,
        "seen": seen,
        "unseen": unseen,
        "pools": root / "pools",
        "clean": clean,
    }


def simulate(clean: Path, pool: Path, outdir: Path, *extra, snr="5", seed=0, nj=1):
    opts = ["--snr", snr] if snr is not None else []
    simulate_noise.main(
        [
            "--data_dir", str(clean), "--noise_scp", str(pool), "--outdir", str(outdir),
            "--seed", str(seed), "--nj", str(nj), *opts, *extra,
        ]
    )  # fmt: skip
    return outdir


def read_table(path: Path):
    rows = [line.split(maxsplit=1) for line in path.read_text().splitlines()]
    return {k: v for k, v in rows}


def achieved_snr(outdir: Path):
    """utt -> (SNR of the written files, target SNR), measured from the written
    clean and noisy files."""
    noisy, clean, target = (
        read_table(outdir / f) for f in ("wav.scp", "spk1.scp", "utt2snr")
    )
    out = {}
    for utt in noisy:
        x, fs_x = soundfile.read(noisy[utt], dtype="float64")
        s, fs_s = soundfile.read(clean[utt], dtype="float64")
        assert fs_x == fs_s and x.shape == s.shape
        snr = 10 * np.log10(np.sum(s**2) / np.sum((x - s) ** 2))
        out[utt] = (snr, float(target[utt]))
    return out


# ------------------------------------------------------------------------ mixing
def test_fit_noise_tiles_a_short_noise_and_cuts_a_long_one():
    rng = np.random.default_rng(0)
    short = np.arange(7.0)
    seg, offset = fit_noise(short, 20, rng)
    assert seg.shape == (20,) and 0 <= offset < 7
    np.testing.assert_array_equal(seg, np.roll(short, -offset)[np.arange(20) % 7])
    long = np.arange(100.0)
    seg, offset = fit_noise(long, 30, rng)
    np.testing.assert_array_equal(seg, long[(offset + np.arange(30)) % 100])
    offsets = {fit_noise(long, 30, rng)[1] for _ in range(50)}
    assert len(offsets) > 30  # the shift is random, not always 0


@pytest.mark.parametrize("snr", [-5.0, 0.0, 5.0, 10.0])
def test_mix_reaches_the_snr_exactly(snr):
    rng = np.random.default_rng(1)
    clean = voice("A", 1.0, FS, rng)
    noise = rng.standard_normal(len(clean)).astype(np.float32) * 3
    noisy, scaled = mix(clean, noise, snr)
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    np.testing.assert_allclose(noisy - clean, scaled, atol=1e-6)
    got = 10 * np.log10(
        np.mean(clean.astype(float) ** 2) / np.mean(scaled.astype(float) ** 2)
    )
    assert abs(got - snr) < 1e-4


@pytest.mark.parametrize(
    "clean, noise, snr, match",
    [
        (np.zeros(10), np.ones(10), 0.0, "clean speech is silent"),
        (np.ones(10), np.zeros(10), 0.0, "noise is silent"),
        (np.ones(10), np.ones(9), 0.0, "same length"),
        (np.ones(10), np.full(10, np.nan), 0.0, "NaN"),
        (np.ones(10), np.ones(10), np.inf, "finite"),
    ],
)
def test_mix_refuses_what_has_no_snr(clean, noise, snr, match):
    with pytest.raises(MeritInputError, match=match):
        mix(clean, noise, snr)
    with pytest.raises(MeritInputError, match="no samples"):
        fit_noise(np.zeros(0), 5, np.random.default_rng(0))


# ------------------------------------------------------------------------- pools
def test_pools_are_disjoint_cover_every_type_and_keep_unseen_apart(corpus):
    pools = {p: read_table(corpus["pools"] / f"{p}.scp") for p in noise_pools.POOLS}
    assert {p: len(v) for p, v in pools.items()} == {
        "train": 21, "dev": 3, "test_seen": 6, "test_unseen": 4
    }  # fmt: skip
    paths = [Path(v) for pool in pools.values() for v in pool.values()]
    assert len(paths) == len(set(paths)) and all(p.is_absolute() for p in paths)
    ids = [k for pool in pools.values() for k in pool]
    assert len(ids) == len(set(ids))
    seen = sorted(p for d in corpus["seen"] for p in d.rglob("*.*"))
    assert (
        sorted(
            Path(v) for p in ("train", "dev", "test_seen") for v in pools[p].values()
        )
        == seen
    )
    unseen_dir = corpus["unseen"][0]
    assert all(
        Path(v).is_relative_to(unseen_dir) for v in pools["test_unseen"].values()
    )
    for pool in ("train", "dev", "test_seen"):  # every seen type in every pool
        for d in corpus["seen"]:
            assert any(Path(v).is_relative_to(d) for v in pools[pool].values()), (
                pool,
                d,
            )


def test_pools_follow_the_seed_and_not_the_location(corpus, tmp_path):
    def split(seen, seed, out):
        prepare_noise.main(
            [
                "--seen_dirs",
                " ".join(map(str, seen)),
                "--outdir",
                str(out),
                "--seed",
                str(seed),
            ]
        )
        return {
            p: sorted(read_table(out / f"{p}.scp"))
            for p in ("train", "dev", "test_seen")
        }

    first = split(corpus["seen"], 0, tmp_path / "a")
    assert not (tmp_path / "a" / "test_unseen.scp").exists()
    moved = tmp_path / "moved"
    shutil.copytree(corpus["root"] / "noise", moved)
    assert (
        split([moved / d.name for d in reversed(corpus["seen"])], 0, tmp_path / "b")
        == first
    )
    assert split(corpus["seen"], 1, tmp_path / "c") != first


def test_prepare_noise_errors(corpus, tmp_path):
    seen = " ".join(map(str, corpus["seen"]))
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "readme.txt").write_text("no audio")
    few = tmp_path / "few"
    few.mkdir()
    for i in range(2):
        soundfile.write(few / f"n{i}.wav", np.ones(100) * 0.1, FS)
    cases = [
        (["--seen_dirs", f"{seen} {tmp_path / 'nope'}"], "nope: no such directory"),
        (["--seen_dirs", f"{seen} {empty}"], "empty: no audio files"),
        (["--seen_dirs", seen, "--unseen_dirs", str(corpus["seen"][1])], "in both"),
        (["--seen_dirs", str(few)], "2 audio file.* cannot be split"),
        (["--seen_dirs", seen, "--dev_ratio", "0"], "--dev_ratio 0.0"),
        (
            ["--seen_dirs", seen, "--dev_ratio", "0.5", "--test_ratio", "0.5"],
            "sum below 1",
        ),
    ]
    for opts, match in cases:
        with pytest.raises(SystemExit, match=f"merit_prepare_noise: error: .*{match}"):
            prepare_noise.main([*opts, "--outdir", str(tmp_path / "out")])
    (few / "bad.wav").write_text("not audio")
    with pytest.raises(SystemExit, match="bad.wav: cannot read audio"):
        prepare_noise.main(["--seen_dirs", str(few), "--outdir", str(tmp_path / "out")])


# -------------------------------------------------------------------- simulation
@pytest.mark.parametrize("snr", ["-5", "0", "5", "10"])
def test_written_mixtures_have_the_target_snr(corpus, tmp_path, snr):
    out = simulate(
        corpus["clean"], corpus["pools"] / "test_seen.scp", tmp_path / "sim", snr=snr
    )
    snrs = achieved_snr(out)
    assert sorted(snrs) == sorted(UTTS)
    for utt, (got, target) in snrs.items():
        assert target == float(snr)
        assert abs(got - target) < 0.1, (utt, got, target)
    for path in read_table(out / "wav.scp").values():
        info = soundfile.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (FS, 1, "PCM_16")
        assert Path(path).parent == out.resolve() / "wavs"
    # The loud utterance clips at low SNR: both it and its reference are scaled.
    clean = read_table(out / "spk1.scp")
    source = read_table(corpus["clean"] / "wav.scp")
    loud = UTTS[-1]
    if snr in ("-5", "0"):
        assert clean[loud] == str(out.resolve() / "wavs" / f"{loud}_clean.wav")
        assert (
            np.abs(soundfile.read(read_table(out / "wav.scp")[loud])[0]).max()
            <= 0.99 + 1e-4
        )
    assert all(clean[u] == source[u] for u in UTTS[:-1])  # unchanged: the input file
    assert (out / "emotion").read_text() == (corpus["clean"] / "emotion").read_text()
    assert (out / "utt2spk").read_text() == (corpus["clean"] / "utt2spk").read_text()
    assert not (out / "utt2gender").exists()
    noise_ids = read_table(corpus["pools"] / "test_seen.scp")
    for utt, value in read_table(out / "utt2noise").items():
        noise_id, offset = value.split()
        assert noise_id in noise_ids and int(offset) >= 0


def test_snr_range_draws_per_utterance(corpus, tmp_path):
    out = simulate(
        corpus["clean"],
        corpus["pools"] / "train.scp",
        tmp_path / "sim",
        "--snr_range",
        "0",
        "10",
        snr=None,
    )
    snrs = achieved_snr(out)
    targets = [t for _, t in snrs.values()]
    assert all(0 <= t <= 10 for t in targets) and len(set(targets)) > 3
    assert all(abs(got - t) < 0.1 for got, t in snrs.values())
    assert all(t == round(t, 2) for t in targets)


def test_noise_is_the_fitted_segment_at_the_logged_offset(corpus, tmp_path):
    """noisy - clean is the noise file shifted by the logged offset, tiled (a
    noise shorter than the speech) or cut (longer), times one gain."""
    rng = np.random.default_rng(5)
    lengths = {"short": int(0.4 * FS), "long": int(3.0 * FS)}
    for name, n in lengths.items():
        soundfile.write(
            tmp_path / f"{name}.wav", 0.1 * rng.standard_normal(n), FS, subtype="FLOAT"
        )
        _write(tmp_path / f"{name}.scp", [(name, tmp_path / f"{name}.wav")])
        out = simulate(
            corpus["clean"],
            tmp_path / f"{name}.scp",
            tmp_path / name,
            "--subtype",
            "FLOAT",
        )
        noise = soundfile.read(tmp_path / f"{name}.wav", dtype="float64")[0]
        noisy, clean, log = (
            read_table(out / f) for f in ("wav.scp", "spk1.scp", "utt2noise")
        )
        for utt in UTTS:
            x = soundfile.read(noisy[utt], dtype="float64")[0]
            s = soundfile.read(clean[utt], dtype="float64")[0]
            noise_id, offset = log[utt].split()
            assert noise_id == name
            expected = noise[(int(offset) + np.arange(len(s))) % n]
            gain = np.dot(x - s, expected) / np.dot(expected, expected)
            np.testing.assert_allclose(x - s, gain * expected, atol=1e-6)


def test_same_seed_same_bytes_for_any_nj(corpus, tmp_path):
    pool = corpus["pools"] / "dev.scp"
    a = simulate(corpus["clean"], pool, tmp_path / "a", snr="0", nj=1)
    b = simulate(corpus["clean"], pool, tmp_path / "b", snr="0", nj=2)
    c = simulate(corpus["clean"], pool, tmp_path / "c", snr="0", seed=1)
    files = sorted(p.name for p in (a / "wavs").iterdir())
    assert files == sorted(p.name for p in (b / "wavs").iterdir())
    for name in files:
        assert (a / "wavs" / name).read_bytes() == (b / "wavs" / name).read_bytes()
    for name in ("utt2snr", "utt2noise", "emotion"):
        assert (a / name).read_text() == (b / name).read_text()
    assert (a / "wav.scp").read_text().replace(str(a), "") == (
        b / "wav.scp"
    ).read_text().replace(str(b), "")
    differ = [
        (a / "wavs" / f"{u}.wav").read_bytes() != (c / "wavs" / f"{u}.wav").read_bytes()
        for u in UTTS
    ]
    assert all(differ)


def test_noise_at_another_rate_is_resampled(corpus, tmp_path):
    rng = np.random.default_rng(3)
    noise = tmp_path / "n8k.wav"
    stereo = 0.1 * rng.standard_normal((8000, 2))
    soundfile.write(noise, stereo, 8000)
    _write(tmp_path / "n.scp", [("n8k", noise)])
    out = simulate(corpus["clean"], tmp_path / "n.scp", tmp_path / "sim", snr="-5")
    for utt, (got, target) in achieved_snr(out).items():
        assert abs(got - target) < 0.1
        assert soundfile.info(read_table(out / "wav.scp")[utt]).samplerate == FS
    offsets = [int(v.split()[1]) for v in read_table(out / "utt2noise").values()]
    # offsets count samples of the noise at the speech's rate (1 s: 16000)
    assert max(offsets) < 16000 and max(offsets) >= 8000


def test_quiet_speech_falls_back_to_float(tmp_path):
    """16 bits cannot hold a -10 dB noise under speech at -100 dBFS: such an
    utterance is written as FLOAT, so its SNR is still right."""
    clean = make_clean_dir(tmp_path / "clean", gains=[1e-5] + [0.3] * 5)
    soundfile.write(
        tmp_path / "n.wav", np.random.default_rng(0).standard_normal(FS) * 0.1, FS
    )
    _write(tmp_path / "n.scp", [("n", tmp_path / "n.wav")])
    # the quiet source itself must hold its samples: rewrite it as float
    src = read_table(clean / "wav.scp")[UTTS[0]]
    x = voice("A", 1.2, FS, np.random.default_rng(0))
    soundfile.write(src, x / np.abs(x).max() * 1e-5, FS, subtype="FLOAT")
    out = simulate(clean, tmp_path / "n.scp", tmp_path / "sim", snr="10")
    for utt, (got, target) in achieved_snr(out).items():
        assert abs(got - target) < 0.1, (utt, got)
    subtypes = {
        u: soundfile.info(p).subtype for u, p in read_table(out / "wav.scp").items()
    }
    assert subtypes[UTTS[0]] == "FLOAT"
    assert all(subtypes[u] == "PCM_16" for u in UTTS[1:])


def test_rerun_skips_until_the_options_change(corpus, tmp_path, caplog):
    pool = corpus["pools"] / "dev.scp"
    out = simulate(corpus["clean"], pool, tmp_path / "sim", snr="5")
    stamp = (out / "wavs" / f"{UTTS[0]}.wav").stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        simulate(
            corpus["clean"], pool, out, snr="5", nj=2
        )  # --nj is not an option of the output
    assert "skipped" in caplog.text
    assert (out / "wavs" / f"{UTTS[0]}.wav").stat().st_mtime_ns == stamp
    caplog.clear()
    with caplog.at_level(logging.INFO):
        simulate(corpus["clean"], pool, out, snr="0")
    assert "skipped" not in caplog.text
    assert set(read_table(out / "utt2snr").values()) == {"0"}
    # a crash leaves no .done: the next run starts over
    (out / ".done").unlink()
    (out / "wav.scp").unlink()
    simulate(corpus["clean"], pool, out, snr="0")
    assert (out / "wav.scp").is_file()


def test_simulation_errors(corpus, tmp_path):
    pool = corpus["pools"] / "dev.scp"
    silent = make_clean_dir(tmp_path / "silent")
    soundfile.write(read_table(silent / "wav.scp")[UTTS[2]], np.zeros(FS), FS)
    zeros = tmp_path / "zeros.wav"
    soundfile.write(zeros, np.zeros(FS), FS)
    _write(tmp_path / "zeros.scp", [("z", zeros)])
    (tmp_path / "empty.scp").write_text("")
    broken = make_clean_dir(tmp_path / "broken")
    Path(read_table(broken / "wav.scp")[UTTS[1]]).write_text("not audio")
    cases = [
        (silent, pool, [], f"'{UTTS[2]}': clean speech .* is silent"),
        (corpus["clean"], tmp_path / "zeros.scp", [], "only silent segments"),
        (corpus["clean"], tmp_path / "empty.scp", [], "noise pool is empty"),
        (
            corpus["clean"],
            tmp_path / "nope.scp",
            [],
            "--noise_scp .*nope.scp: no such file",
        ),
        (tmp_path / "nodir", pool, [], "wav.scp: no such file"),
        (broken, pool, [], f"'{UTTS[1]}': cannot read audio"),
        (corpus["clean"], pool, ["--snr_range", "5", "0"], "expected LO <= HI"),
    ]
    for i, (data, noise, extra, match) in enumerate(cases):
        snr = None if extra else "0"
        with pytest.raises(SystemExit, match=f"merit_simulate_noise: error: .*{match}"):
            simulate(data, noise, tmp_path / f"out{i}", *extra, snr=snr, nj=1)


def test_stereo_speech_is_downmixed_and_its_reference_written(corpus, tmp_path):
    clean = make_clean_dir(tmp_path / "clean", gains=[0.1] * 6)
    src = read_table(clean / "wav.scp")[UTTS[0]]
    mono = soundfile.read(src, dtype="float64")[0]
    soundfile.write(src, np.stack([mono, 0.5 * mono], axis=1), FS, subtype="PCM_16")
    out = simulate(clean, corpus["pools"] / "dev.scp", tmp_path / "sim", snr="0")
    ref = read_table(out / "spk1.scp")[UTTS[0]]
    assert ref == str(out.resolve() / "wavs" / f"{UTTS[0]}_clean.wav")
    np.testing.assert_allclose(soundfile.read(ref)[0], 0.75 * mono, atol=1 / 32768)
    for got, target in achieved_snr(out).values():
        assert abs(got - target) < 0.1


def _room(delay: int, fs: int = FS) -> np.ndarray:
    """A toy RIR: direct path of 0.5 at ``delay``, then a decaying tail."""
    rng = np.random.default_rng(3)
    tail = rng.standard_normal(fs // 4) * np.exp(-np.arange(fs // 4) / (0.05 * fs))
    rir = np.concatenate([np.zeros(delay), [0.5], 0.1 * tail])
    return rir


@pytest.mark.parametrize("reference", ["dry", "early"])
def test_reverberation_keeps_length_and_alignment(reference):
    # White noise: its autocorrelation peaks at lag 0 only.
    clean = np.random.default_rng(1).standard_normal(FS // 2).astype(np.float32)
    wet, ref = reverberate(clean, _room(delay=37), FS, reference=reference)
    assert wet.shape == ref.shape == clean.shape and wet.dtype == np.float64
    # The room does not change the level: the reverberant speech keeps the dry
    # speech's power, and the reference is scaled by the same gain.
    np.testing.assert_allclose(np.mean(wet**2), np.mean(clean.astype(float) ** 2))
    # The direct path is scaled to 1 and advanced to delay 0: the reverberant speech
    # correlates best with the dry speech at lag 0.
    lags = range(-50, 51)
    corr = [np.dot(np.roll(clean, lag), wet) for lag in lags]
    assert list(lags)[int(np.argmax(corr))] == 0
    if reference == "dry":
        gain = np.dot(ref, clean) / np.dot(clean, clean)  # the dry speech, scaled
        np.testing.assert_allclose(ref, gain * clean, rtol=1e-5, atol=1e-7)
    else:  # direct path + 50 ms: closer to the dry speech than the full reverb
        assert np.abs(ref - clean).sum() < np.abs(wet - clean).sum()
    # An identity RIR (any delay, any gain) changes nothing.
    ident = np.zeros(20)
    ident[5] = -2.0
    wet, ref = reverberate(clean, ident, FS, reference=reference)
    np.testing.assert_allclose(wet, -clean, atol=1e-6)


@pytest.mark.parametrize(
    "rir, reference, match",
    [
        (np.zeros(8), "dry", "silent"),
        (np.array([]), "dry", "empty"),
        (np.array([1.0, np.nan]), "dry", "NaN"),
        (np.ones((2, 4)), "dry", "1-D"),
        (np.ones(4), "late", "not one of"),
    ],
)
def test_reverberate_refuses_bad_rirs(rir, reference, match):
    with pytest.raises(MeritInputError, match=match):
        reverberate(np.ones(100), rir, FS, reference=reference)


def test_load_rir_takes_the_first_channel_resamples_and_names_bad_files(tmp_path):
    from espnet2_merit.simulation.simulate import load_rir

    rir = np.zeros((800, 2))
    rir[10, 0], rir[40, 1] = 1.0, 1.0  # channel 0's direct path at 10 samples
    path = tmp_path / "room.wav"
    soundfile.write(path, rir, 8000, subtype="FLOAT")
    same = load_rir(str(path), "room", 8000)
    assert same.shape == (800,) and int(np.argmax(np.abs(same))) == 10
    double = load_rir(str(path), "room", 16000)  # 8 kHz -> 16 kHz
    assert double.shape == (1600,) and int(np.argmax(np.abs(double))) == 20
    soundfile.write(tmp_path / "silent.wav", np.zeros(100), FS, subtype="FLOAT")
    with pytest.raises(MeritInputError, match="RIR 'quiet'.*silent.wav.*silent"):
        load_rir(str(tmp_path / "silent.wav"), "quiet", FS)
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    with pytest.raises(MeritInputError, match="RIR 'bad'.*cannot read"):
        load_rir(str(tmp_path / "bad.wav"), "bad", FS)


# ------------------------------------------------------------ reverberation
def make_rir_dir(root: Path, kind: str, num: int, delay0: int) -> Path:
    """``num`` toy RIRs (float wav) of one room type."""
    for i in range(num):
        path = root / kind / f"{kind}{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, _room(delay0 + 7 * i), FS, subtype="FLOAT")
    return root / kind


@pytest.fixture(scope="module")
def rirs(corpus):
    root = corpus["root"] / "rir"
    seen = [make_rir_dir(root, k, 5, d) for k, d in (("small", 3), ("large", 40))]
    unseen = [make_rir_dir(root, "hall", 2, 90)]
    prepare_noise.main(
        [
            "--kind", "rir", "--seen_dirs", " ".join(map(str, seen)),
            "--unseen_dirs", str(unseen[0]), "--outdir", str(root / "pools"),
        ]
    )  # fmt: skip
    return root / "pools"


def test_rir_pools_are_disjoint_with_room_types_held_out(rirs, tmp_path):
    pools = {p: read_table(rirs / f"{p}.scp") for p in noise_pools.POOLS}
    assert [len(pools[p]) for p in noise_pools.POOLS] == [6, 2, 2, 2]
    ids = [i for p in pools.values() for i in p]
    assert len(ids) == len(set(ids))  # no RIR in two pools
    for pool in ("train", "dev", "test_seen"):  # every seen room type in each
        assert {i.split("-")[0] for i in pools[pool]} == {"small", "large"}
    assert {i.split("-")[0] for i in pools["test_unseen"]} == {"hall"}
    with pytest.raises(SystemExit, match="RIR directory .*nope: no such directory"):
        prepare_noise.main(
            ["--kind", "rir", "--seen_dirs", str(tmp_path / "nope"), "--outdir",
             str(tmp_path / "out")]
        )  # fmt: skip


def _rir_opts(rirs: Path, prob: str, *extra):
    return ["--rir_scp", str(rirs / "train.scp"), "--rir_prob", prob, *extra]


def _files(out: Path):
    """Every output file's bytes, paths made relative to ``out``."""
    files = {p.name: p.read_bytes() for p in (out / "wavs").iterdir()}
    for name in ("wav.scp", "spk1.scp", "utt2snr", "utt2noise"):
        files[name] = (out / name).read_text().replace(str(out.resolve()), "").encode()
    return files


def test_rir_prob_0_is_the_dry_output_and_dry_utterances_keep_their_bytes(
    corpus, rirs, tmp_path
):
    pool, clean = corpus["pools"] / "dev.scp", corpus["clean"]
    dry = _files(simulate(clean, pool, tmp_path / "dry", snr="0"))
    none = simulate(clean, pool, tmp_path / "p0", *_rir_opts(rirs, "0"), snr="0")
    assert _files(none) == dry
    assert set(read_table(none / "utt2rir").values()) == {"-"}
    half = simulate(clean, pool, tmp_path / "p5", *_rir_opts(rirs, "0.5"), snr="0")
    utt2rir = read_table(half / "utt2rir")
    wet = {u for u, r in utt2rir.items() if r != "-"}
    assert 0 < len(wet) < len(UTTS)
    got = _files(half)
    for utt in set(UTTS) - wet:  # a dry utterance: bytes of the run without RIRs
        assert got[f"{utt}.wav"] == dry[f"{utt}.wav"]
    for utt in wet:
        assert got[f"{utt}.wav"] != dry[f"{utt}.wav"]
    # the noise draws never depend on the reverberation
    assert got["utt2noise"] == dry["utt2noise"] and got["utt2snr"] == dry["utt2snr"]


@pytest.mark.parametrize("reference", ["dry", "early"])
def test_reverberant_mixtures_have_the_snr_of_the_reverberant_speech(
    corpus, rirs, tmp_path, reference
):
    from espnet2_merit.simulation.simulate import load_rir

    # quiet enough that no mixture is scaled down against clipping
    clean = make_clean_dir(tmp_path / "clean", gains=[0.05] * 6)
    pool = corpus["pools"] / "dev.scp"
    opts = _rir_opts(rirs, "1", "--rir_reference", reference)
    out = simulate(clean, pool, tmp_path / "a", *opts, snr="5")
    rir_pool = read_table(rirs / "train.scp")
    utt2rir = read_table(out / "utt2rir")
    assert set(utt2rir) == set(UTTS) and set(utt2rir.values()) <= set(rir_pool)
    sources, refs = read_table(clean / "wav.scp"), read_table(out / "spk1.scp")
    for utt, noisy_path in read_table(out / "wav.scp").items():
        dry = soundfile.read(sources[utt], dtype="float64")[0]
        rir = load_rir(rir_pool[utt2rir[utt]], utt2rir[utt], FS)
        wet, expected_ref = reverberate(dry, rir, FS, reference=reference)
        # back to the dry speech's power, the reference by the same gain
        gain = np.sqrt(np.mean(dry**2) / np.mean(wet.astype(np.float64) ** 2))
        wet, expected_ref = wet * gain, expected_ref * gain
        assert np.mean(wet**2) == pytest.approx(np.mean(dry**2), rel=1e-5)
        noisy = soundfile.read(noisy_path, dtype="float64")[0]
        snr = 10 * np.log10(np.sum(wet**2) / np.sum((noisy - wet) ** 2))
        assert abs(snr - 5) < 0.05, (utt, snr)
        ref = soundfile.read(refs[utt], dtype="float64")[0]
        np.testing.assert_allclose(ref, expected_ref, atol=1 / 32768)
        assert refs[utt].endswith(f"wavs/{utt}_clean.wav")
    # seeded and --nj-independent
    again = simulate(clean, pool, tmp_path / "b", *opts, snr="5", nj=2)
    assert _files(again) == _files(out)
    assert (again / "utt2rir").read_text() == (out / "utt2rir").read_text()


def test_rir_options_enter_the_marker_and_bad_rirs_name_their_file(
    corpus, rirs, tmp_path, caplog
):
    pool, clean = corpus["pools"] / "dev.scp", corpus["clean"]
    out = simulate(clean, pool, tmp_path / "sim", *_rir_opts(rirs, "1"), snr="5")
    first = (out / "wav.scp").read_text()
    with caplog.at_level(logging.INFO):
        simulate(clean, pool, out, *_rir_opts(rirs, "1", "--rir_early_ms", "20"))
    assert "skipped" not in caplog.text  # --rir_early_ms is an option of the output
    caplog.clear()
    with caplog.at_level(logging.INFO):
        simulate(clean, pool, out, *_rir_opts(rirs, "1", "--rir_early_ms", "20"))
    assert "skipped" in caplog.text and (out / "wav.scp").read_text() == first
    soundfile.write(tmp_path / "zero.wav", np.zeros(64), FS, subtype="FLOAT")
    _write(tmp_path / "zero.scp", [("zero", tmp_path / "zero.wav")])
    cases = [
        (["--rir_scp", str(tmp_path / "zero.scp")], "RIR 'zero'.*zero.wav.*silent"),
        (_rir_opts(rirs, "1.5"), "--rir_prob must be in"),
        (["--rir_scp", str(tmp_path / "no.scp")], "--rir_scp .*no.scp: no such file"),
    ]
    for i, (extra, match) in enumerate(cases):
        with pytest.raises(SystemExit, match=f"merit_simulate_noise: error: .*{match}"):
            simulate(clean, pool, tmp_path / f"bad{i}", *extra)


def test_recipe_stage_2_reverberates_train_dev_and_makes_reverberant_tests(
    corpus, rirs, tmp_path
):
    """merit.sh's reverberation options: RIR pools from the RIR directories,
    train/dev reverberant with --rir_prob, one reverberant test set per rooms x
    noise x SNR named for the scoring, the reference option passed on."""
    recipe = copy_recipe(REPO / "egs2" / "mini_msp_podcast" / "merit1", tmp_path / "r")
    for dset in ("train", "dev", "test"):
        shutil.copytree(corpus["clean"], recipe / "data" / dset)
    rir = rirs.parent
    cmd = [
        "./merit.sh", "--stage", "2", "--stop_stage", "2",
        "--train_config", str(SPARSE_TINY), "--test_sets", "test", "--nj", "1",
        "--noise_seen_dirs", " ".join(map(str, corpus["seen"])),
        "--noise_unseen_dirs", str(corpus["unseen"][0]),
        "--noise_sets", "seen", "--test_snrs", "5", "--train_snr", "5",
        "--rir_seen_dirs", f"{rir / 'small'} {rir / 'large'}",
        "--rir_unseen_dirs", str(rir / "hall"), "--rir_prob", "0.5",
        "--rir_reference", "early", "--rir_early_ms", "20",
        "--rir_noise_sets", "seen", "--rir_test_snrs", "0",
    ]  # fmt: skip
    env = dict(os.environ, MERIT_PYTHON=sys.executable, MERIT_CMD_BACKEND="local")
    out = subprocess.run(cmd, cwd=recipe, env=env, capture_output=True, text=True)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    data = recipe / "data"
    assert sorted(p.stem for p in (data / "rir").glob("*.scp")) == sorted(
        noise_pools.POOLS
    )
    train = set(read_table(data / "train_sim" / "utt2rir").values())
    assert "-" in train and train - {"-"} <= set(read_table(data / "rir/train.scp"))
    for room in ("seen", "unseen"):
        sim = data / f"test_rir{room}_seen_snr0"
        pool = set(read_table(data / "rir" / f"test_{room}.scp"))
        assert set(read_table(sim / "utt2rir").values()) <= pool  # all reverberant
        assert set(read_table(sim / "utt2snr").values()) == {"0"}
        assert all("_clean.wav" in p for p in read_table(sim / "spk1.scp").values())
        # the dry twin's noise draws: a paired comparison
        assert (sim / "utt2noise").read_text() == (
            data / "test_seen_snr5" / "utt2noise"
        ).read_text()
    script = (recipe / "dump" / "log" / "noise_sim.sh").read_text()
    assert script.count("--rir_early_ms 20") == 4  # train, dev, 2 test sets
    assert not (data / "test_seen_snr0").exists()
