"""Dynamic mixing: draws per (seed, epoch, utterance), the options, the epoch's
way into the dataset, and one tiny training run with it."""

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import yaml
from merit_testing import SPARSE_TINY, data_args

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import LabelTarget, WaveformTarget
from espnet2_merit.simulation.dynamic_mixing import DynamicMixer, build_mixer
from espnet2_merit.train.epoch_iter_factory import EpochIterFactory
from espnet2_merit.train.preprocessor import MeritPreprocessor
from espnet2_merit.utils.synthetic import voice

FS = 16000
UTTS = [f"u{i}" for i in range(8)]


def _clean(uid: str) -> np.ndarray:
    return voice("A", 0.5, FS, np.random.default_rng(int(uid[1:])))


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    """(noise.scp, rir.scp): 3 noises of 0.3-0.7 s, 2 synthetic RIRs."""
    root = tmp_path_factory.mktemp("pools")
    rng = np.random.default_rng(0)
    noise, rirs = [], []
    for i, sec in enumerate((0.3, 0.5, 0.7)):
        path = root / f"n{i}.wav"
        soundfile.write(path, 0.1 * rng.standard_normal(int(sec * FS)), FS)
        noise.append(f"n{i} {path}")
    for i in range(2):
        t = np.arange(int(0.2 * FS)) / FS
        rir = rng.standard_normal(len(t)) * np.exp(-t / 0.05) * 0.3
        rir[40 + 10 * i] = 1.0  # direct path
        path = root / f"r{i}.wav"
        soundfile.write(path, rir, FS, subtype="FLOAT")
        rirs.append(f"r{i} {path}")
    (root / "noise.scp").write_text("\n".join(noise) + "\n")
    (root / "rir.scp").write_text("\n".join(rirs) + "\n")
    return str(root / "noise.scp"), str(root / "rir.scp")


def _mixer(pools, **kw) -> DynamicMixer:
    conf = {"noise_scp": pools[0], "snr_range": [0, 10], **kw}
    if conf.get("rir_prob"):
        conf.setdefault("rir_scp", pools[1])
    return build_mixer(conf, FS, default_seed=7)


def _same(a, b):
    return np.array_equal(a.noisy, b.noisy) and np.array_equal(a.reference, b.reference)


# ---- draws ----------------------------------------------------------------------


def test_same_seed_epoch_utt_same_mixture_other_epoch_or_seed_not(pools):
    a, b = _mixer(pools), _mixer(pools, cache_mb=0)
    x = _clean("u1")
    assert _same(a.mix_utt(x, "u1", 3), b.mix_utt(x, "u1", 3))
    assert a.seed == 7  # the run's --seed by default
    other_epoch = a.mix_utt(x, "u1", 4)
    other_seed = _mixer(pools, seed=8).mix_utt(x, "u1", 3)
    for m in (other_epoch, other_seed):
        assert not np.array_equal(m.noisy, a.mix_utt(x, "u1", 3).noisy)


def test_independent_of_worker_rank_and_order(pools):
    """One process in order, two DataLoader workers (different global seeds, as
    ESPnet's worker_init_fn gives them), two 'ranks' with half the utterances each
    in reverse order: the same mixtures."""
    pre = MeritPreprocessor(True, [WaveformTarget("speech_ref1")], mixer=_mixer(pools))
    pre.set_epoch(2)

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return len(UTTS)

        def __getitem__(self, i):
            return pre(UTTS[i], {"speech": _clean(UTTS[i])})["speech"]

    single = [Data()[i] for i in range(len(UTTS))]
    loader = torch.utils.data.DataLoader(
        Data(),
        batch_size=None,
        num_workers=2,
        worker_init_fn=lambda w: np.random.seed(100 + w),
    )
    workers = [x.numpy() for x in loader]
    ranks = {}
    for rank in range(2):
        mixer = _mixer(pools)  # each rank builds its own
        for uid in reversed(UTTS[rank::2]):
            np.random.seed(rank)
            ranks[uid] = mixer(_clean(uid), uid, 2)[0]
    for i, uid in enumerate(UTTS):
        np.testing.assert_array_equal(single[i], workers[i])
        np.testing.assert_array_equal(single[i], ranks[uid])
    assert len({x.tobytes() for x in single}) == len(UTTS)


def test_snr_is_in_range_and_exact(pools):
    mixer = _mixer(pools, snr_range=[-5, 5])
    snrs = []
    for uid in UTTS:
        x = _clean(uid)
        m = mixer.mix_utt(x, uid, 1)
        noise = m.noisy.astype(np.float64) - x
        measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2))
        assert measured == pytest.approx(m.snr_db, abs=0.01)
        assert -5 <= m.snr_db <= 5 and m.rir_id is None
        snrs.append(m.snr_db)
    assert np.std(snrs) > 1  # drawn, not fixed
    fixed = _mixer(pools, snr_range=[5, 5]).mix_utt(_clean("u0"), "u0", 1)
    assert fixed.snr_db == 5.0


def test_rir_probability_and_references(pools):
    x = _clean("u3")
    dry = _mixer(pools, rir_prob=1.0)
    early = _mixer(pools, rir_prob=1.0, rir_reference="early", early_ms=5)
    never = _mixer(pools, rir_prob=0.0, rir_scp=pools[1])
    assert all(dry.mix_utt(x, u, 1).rir_id is not None for u in UTTS)
    assert all(never.mix_utt(x, u, 1).rir_id is None for u in UTTS)
    m_dry, m_early = dry.mix_utt(x, "u3", 1), early.mix_utt(x, "u3", 1)
    # dry: the clean speech, scaled with the reverberant speech to the dry power
    # (as stage 2 does: both reverberate with simulation.mixing.reverberate)
    gain = np.dot(m_dry.reference, x) / np.dot(x, x)
    np.testing.assert_allclose(m_dry.reference, gain * x, rtol=1e-5, atol=1e-6)
    assert not np.allclose(m_early.reference, x, atol=1e-3)  # early reflections
    assert m_dry.rir_id == m_early.rir_id and m_dry.snr_db == m_early.snr_db
    # Same draws as without reverberation, except the speech: noise and SNR.
    m_never = never.mix_utt(x, "u3", 1)
    assert (m_never.noise_id, m_never.offset) == (m_dry.noise_id, m_dry.offset)
    half = _mixer(pools, rir_prob=0.5)
    used = [half.mix_utt(x, f"v{i}", 1).rir_id is not None for i in range(40)]
    assert 5 < sum(used) < 35


def test_noise_cache_is_bounded(pools):
    small = _mixer(pools, cache_mb=0.03)  # 31 kB: one float32 noise of <= 0.5 s
    for uid in UTTS:
        small.mix_utt(_clean(uid), uid, 1)
    assert small._cached <= small.cache_bytes and len(small._cache) <= 1
    none = _mixer(pools, cache_mb=0)
    none.preload()
    none.mix_utt(_clean("u0"), "u0", 1)
    assert not none._cache
    full = _mixer(pools)
    full.preload()
    assert len(full._cache) == 3


def test_silent_speech_is_an_error_naming_the_utterance(pools):
    with pytest.raises(MeritInputError, match="utterance 'u9'.*silent"):
        _mixer(pools).mix_utt(np.zeros(800, np.float32), "u9", 1)


@pytest.mark.parametrize(
    "conf, message",
    [
        ({"snr_range": [0, 5]}, r"dynamic_mixing.noise_scp is required"),
        ({"noise_scp": "N"}, r"dynamic_mixing.snr_range is required"),
        ({"noise_scp": "N", "snr_range": [5, 0]}, r"snr_range: lo must not exceed"),
        ({"noise_scp": "N", "snr_range": [0, "x"]}, r"snr_range: expected two numbers"),
        ({"noise_scp": "N", "snr_range": [0, 1, 2]}, r"snr_range: expected \[lo, hi\]"),
        ({"noise_scp": "N", "snr_range": 5, "snr": 3}, r"unknown key 'snr'"),
        ({"noise_scp": "N", "snr_range": 5, "rir_prob": 0.5}, r"rir_prob is 0.5 but no rir_scp"),
        ({"noise_scp": "N", "snr_range": 5, "rir_prob": 2}, r"rir_prob: expected a number in \[0.0, 1.0\]"),
        ({"noise_scp": "N", "snr_range": 5, "rir_scp": "R", "rir_reference": "wet"}, r"rir_reference: 'wet' is not one of"),
        ({"noise_scp": "N", "snr_range": 5, "cache_mb": -1}, r"cache_mb: expected a number in"),
        ({"noise_scp": "N", "snr_range": 5, "seed": 1.5}, r"seed: expected an integer"),
        ({"noise_scp": "missing.scp", "snr_range": 5}, r"noise_scp: no such file missing.scp"),
    ],
)  # fmt: skip
def test_option_errors_name_the_key(pools, conf, message):
    files = {"N": pools[0], "R": pools[1]}
    conf = {k: files.get(v, v) if isinstance(v, str) else v for k, v in conf.items()}
    with pytest.raises(MeritInputError, match=message):
        build_mixer(conf, FS, 0)


def test_missing_pool_file_names_the_line(pools, tmp_path):
    bad = tmp_path / "noise.scp"
    bad.write_text(Path(pools[0]).read_text() + "n9 /no/such.wav\n")
    with pytest.raises(MeritInputError, match=r"noise.scp:4: 'n9': no such audio"):
        build_mixer({"noise_scp": str(bad), "snr_range": 5}, FS, 0)


# ---- preprocessor and epochs ----------------------------------------------------


def test_preprocessor_mixes_the_cropped_window_and_makes_the_reference(pools):
    mixer = _mixer(pools)
    targets = [WaveformTarget("speech_ref1"), LabelTarget("emotion", ["A", "S"], "x")]
    pre = MeritPreprocessor(True, targets, max_speech_sec=0.2, mixer=mixer)
    x = _clean("u2")
    outs = {}
    for epoch in (1, 1, 2):
        pre.set_epoch(epoch)
        np.random.seed(epoch + len(outs))  # the global generator plays no part
        outs.setdefault(epoch, []).append(pre("u2", {"speech": x, "emotion": "S"}))
    first, again, second = outs[1][0], outs[1][1], outs[2][0]
    np.testing.assert_array_equal(first["speech"], again["speech"])
    assert len(first["speech"]) == len(first["speech_ref1"]) == int(0.2 * FS)
    start = mixer.crop_start("u2", 1, len(x) - int(0.2 * FS))
    window = x[start : start + int(0.2 * FS)]
    np.testing.assert_array_equal(first["speech_ref1"], window)
    np.testing.assert_array_equal(first["speech"], mixer(window, "u2", 1)[0])
    assert not np.array_equal(first["speech_ref1"], second["speech_ref1"])
    assert first["emotion"].tolist() == [1]
    with pytest.raises(MeritInputError, match="training data only"):
        MeritPreprocessor(False, targets, mixer=mixer)


def test_epoch_iter_factory_sets_the_epoch_before_building(pools):
    seen = []

    class Listener:
        def set_epoch(self, epoch):
            seen.append(("set", epoch))

    class Factory:
        sampler = "the sampler"

        def build_iter(self, epoch, shuffle=None):
            seen.append(("build", epoch))
            return iter([])

    from espnet2.iterators.abs_iter_factory import AbsIterFactory

    AbsIterFactory.register(Factory)
    factory = EpochIterFactory(Factory(), [Listener()])
    factory.build_iter(3)
    assert seen == [("set", 3), ("build", 3)]
    assert factory.sampler == "the sampler"
    with pytest.raises(TypeError, match="set_epoch"):
        EpochIterFactory(Factory(), [object()])


def test_resumed_run_sees_the_same_epochs(pools):
    """Epoch 2 of a run that did epoch 1 == epoch 2 of a fresh (resumed) run,
    through ESPnet's SequenceIterFactory."""
    from espnet2.iterators.sequence_iter_factory import SequenceIterFactory

    def run(epochs):
        pre = MeritPreprocessor(
            True, [WaveformTarget("speech_ref1")], mixer=_mixer(pools)
        )

        class Data(torch.utils.data.Dataset):
            def __getitem__(self, uid):
                return pre(uid, {"speech": _clean(uid)})["speech"]

        batches = [[u] for u in UTTS[:4]]
        factory = EpochIterFactory(
            SequenceIterFactory(Data(), batches, seed=7, shuffle=True,
                                collate_fn=lambda b: np.stack(b)), [pre]
        )  # fmt: skip
        return {e: [b.tobytes() for b in factory.build_iter(e)] for e in epochs}

    full, resumed = run([1, 2]), run([2])
    assert full[2] == resumed[2] and full[1] != full[2]


# ---- task ------------------------------------------------------------------------


def _dm_opts(pools):
    return ["--dynamic_mixing", f"noise_scp={pools[0]}",
            "--dynamic_mixing", "snr_range=[0, 10]"]  # fmt: skip


def _clean_train_args(data_dirs):
    train, valid = data_dirs
    args = data_args(train, valid, names=("speech", "speech_ref1", "emotion"))
    i = args.index(f"{train}/wav.scp,speech,sound")
    args[i] = f"{train}/spk1.scp,speech,sound"
    del args[i + 1 : i + 3]  # the train speech_ref1: the mixer makes it
    return args


def test_tiny_training_with_dynamic_mixing(
    pools, tiny_wavlm, data_dirs, tmp_path, monkeypatch
):
    from espnet2_merit.bin.merit_train import main as train_main

    calls = []
    mix_utt = DynamicMixer.mix_utt

    def spy(self, clean, uid, epoch):
        calls.append((uid, epoch))
        return mix_utt(self, clean, uid, epoch)

    monkeypatch.setattr(DynamicMixer, "mix_utt", spy)
    out = tmp_path / "exp"
    train_main(
        [
            "--config", str(SPARSE_TINY),
            "--frontend_conf", f"path_or_url={tiny_wavlm}",
            "--emotion_list", str(data_dirs[0] / "emotion_list"),
            "--output_dir", str(out), "--ngpu", "0", "--max_epoch", "2",
            "--num_iters_per_epoch", "1", "--max_speech_sec", "1",
            *_clean_train_args(data_dirs), *_dm_opts(pools),
        ]
    )  # fmt: skip
    assert {e for _, e in calls} == {1, 2}
    assert len(calls) == 2 * 4  # one batch of 4 per epoch; dev is not mixed
    train_ids = set((data_dirs[0] / "spk1.scp").read_text().split()[::2])
    assert {u for u, _ in calls} <= train_ids
    recorded = yaml.safe_load((out / "config.yaml").read_text())["dynamic_mixing"]
    assert recorded["noise_scp"] == str(Path(pools[0]).resolve())
    assert (out / "valid.loss.best.pth").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--max_cache_size", "1MB"], "max_cache_size must be 0"),
        (["--iterator_type", "chunk"], "needs iterator_type: sequence or category"),
        (["--dynamic_mixing", "rir_prob=0.5"], "rir_prob is 0.5 but no rir_scp"),
    ],
)
def test_bad_dynamic_mixing_runs(pools, train_cmd, data_dirs, extra, message):
    from espnet2_merit.bin.merit_train import main as train_main

    cmd = [*train_cmd(SPARSE_TINY, "--ngpu", "0", "--dry_run", "true"),
           *_dm_opts(pools), *extra]  # fmt: skip
    with pytest.raises(SystemExit, match=message):
        train_main(cmd)


def test_stage2_mixtures_as_dynamic_mixing_input_is_an_error(
    pools, train_cmd, data_dirs, tmp_path
):
    from espnet2_merit.bin.merit_train import main as train_main

    train, valid = data_dirs
    (train / "utt2snr").write_text("")  # what stage 2 writes beside its mixtures
    try:
        cmd = [*train_cmd(SPARSE_TINY, "--ngpu", "0"), *_dm_opts(pools)]
        with pytest.raises(SystemExit, match="lists stage-2 mixtures"):
            train_main(cmd)
    finally:
        (train / "utt2snr").unlink()


def test_set_epoch_preloads_and_a_pickled_mixer_starts_empty(pools):
    import pickle

    mixer = _mixer(pools)
    pre = MeritPreprocessor(True, [WaveformTarget("speech_ref1")], mixer=mixer)
    pre.set_epoch(5)
    assert pre.epoch == 5 and len(mixer._cache) == 3  # before the workers fork
    copy = pickle.loads(pickle.dumps(mixer))  # a spawned worker's
    assert not copy._cache and copy._cached == 0
    x = _clean("u4")
    assert _same(copy.mix_utt(x, "u4", 5), mixer.mix_utt(x, "u4", 5))
