"""SE and SER metrics and the paired significance tests, each checked against an
independent computation, and the contract of the metric registry."""

import itertools
import logging
import math

import numpy as np
import pytest
from scipy.stats import wilcoxon
from sklearn.metrics import (
    classification_report,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
)

from espnet2_merit.errors import MeritInputError
from espnet2_merit.scoring import registry
from espnet2_merit.scoring import se as se_metrics
from espnet2_merit.scoring.se import match_lengths, pesq_wb, segmental_snr, si_sdr, stoi
from espnet2_merit.scoring.ser import (
    ICBHI_NAMES,
    attribute_metrics,
    ccc,
    classification_metrics,
)
from espnet2_merit.scoring.significance import (
    COUNT_STATISTICS,
    count_statistic,
    paired_randomization_test,
    paired_wilcoxon,
)
from espnet2_merit.utils.synthetic import voice

FS = 16000
CLASSES = ["A", "S", "H", "N"]


def _speech(seconds=2.0, seed=0, fs=FS):
    return voice("N", seconds, fs, np.random.default_rng(seed)).astype(np.float64)


def _ssnr_loop(clean, test, fs, frame_ms, overlap, lo, hi):
    """Segmental SNR written out frame by frame (the test's own formula)."""
    length = int(round(fs * frame_ms / 1000))
    hop = int(round(length * (1 - overlap)))
    values = []
    start = 0
    while start + length <= len(clean):
        s = sum(v * v for v in clean[start : start + length])
        e = sum((c - t) ** 2 for c, t in zip(clean[start : start + length],
                                            test[start : start + length]))  # fmt: skip
        if e == 0:
            values.append(hi)
        elif s == 0:
            values.append(lo)
        else:
            values.append(min(hi, max(lo, 10 * math.log10(s / e))))
        start += hop
    return sum(values) / len(values)


# ---------------------------------------------------------------- segmental SNR
@pytest.mark.parametrize("frame_ms,overlap", [(30, 0.75), (20, 0.5), (25, 0.0)])
def test_ssnr_matches_frame_loop(frame_ms, overlap):
    rng = np.random.default_rng(1)
    fs = 8000
    clean = _speech(0.5, fs=fs)
    clean[1000:1800] = 0  # digital silence: error-free frames and penalised ones
    test = clean + 0.05 * rng.standard_normal(len(clean))
    test[1200:1500] = 0  # silence reproduced exactly inside the silent region
    test[3000:3100] = clean[3000:3100] * 3  # a loud error
    got = segmental_snr(clean, test, fs, frame_ms=frame_ms, overlap=overlap)
    want = _ssnr_loop(clean, test, fs, frame_ms, overlap, -10, 35)
    assert got == pytest.approx(want, abs=1e-9)


def test_ssnr_known_values():
    rng = np.random.default_rng(2)
    clean = rng.standard_normal(FS)
    assert segmental_snr(clean, clean, FS) == 35.0  # clipped at max_db
    assert segmental_snr(clean, -clean, FS, min_db=-20) == pytest.approx(
        10 * np.log10(1 / 4)
    )
    # Stationary white signal with an error 5 dB down: about 5 dB in every frame.
    noise = rng.standard_normal(FS) * 10 ** (-5 / 20)
    assert segmental_snr(clean, clean + noise, FS) == pytest.approx(5, abs=0.3)
    assert segmental_snr(clean, clean + 100 * noise, FS) == -10.0  # clipped


def test_ssnr_counts_silent_frames():
    """All frames are averaged: a silent half with a small error sits at min_db."""
    rng = np.random.default_rng(3)
    clean = np.r_[rng.standard_normal(FS), np.zeros(FS)]
    test = clean + 1e-3 * rng.standard_normal(2 * FS)
    assert segmental_snr(clean[:FS], test[:FS], FS) == 35.0  # 60 dB, clipped
    # 30 ms frames every 7.5 ms: those touching the first second are at 35 dB
    # (any speech there dwarfs the error), the rest at -10 dB.
    starts = np.arange(0, 2 * FS - 480 + 1, 120)
    speech = np.sum(starts < FS)
    want = (35 * speech - 10 * (len(starts) - speech)) / len(starts)
    assert segmental_snr(clean, test, FS) == pytest.approx(want)


def test_lengths_trimmed_or_rejected(caplog):
    clean = _speech(0.5)
    with caplog.at_level(logging.WARNING):
        a, b = match_lengths(clean, clean[:-100], FS, utt="u1")
    assert len(a) == len(b) == len(clean) - 100
    assert "u1" in caplog.text and "trimmed" in caplog.text
    with pytest.raises(MeritInputError, match="'u2'.*differ by 480"):
        segmental_snr(clean, clean[:-480], FS, utt="u2")
    with pytest.raises(MeritInputError, match="'u3'.*mono"):
        si_sdr(np.zeros((10, 2)), np.zeros((10, 2)), utt="u3")
    with pytest.raises(MeritInputError, match="shorter than one"):
        segmental_snr(clean[:100], clean[:100], FS)


# ------------------------------------------------------------------------ SI-SDR
def test_si_sdr_known_values():
    rng = np.random.default_rng(4)
    clean = rng.standard_normal(FS)
    # Scaled, offset copy: scale- and mean-invariant, so (numerically) perfect.
    assert si_sdr(clean, 0.3 * clean + 0.2) > 150
    # Noise orthogonal to the (zero-mean) reference at a 10 dB ratio.
    c = clean - clean.mean()
    noise = rng.standard_normal(FS)
    noise -= noise.mean()
    noise -= np.dot(noise, c) / np.dot(c, c) * c
    noise *= np.sqrt(np.dot(c, c) / np.dot(noise, noise) / 10)
    assert si_sdr(clean, 2.0 * (clean + noise)) == pytest.approx(10.0, abs=1e-9)
    assert si_sdr(clean, clean) == math.inf
    with pytest.raises(MeritInputError, match="silent"):
        si_sdr(np.ones(100), clean[:100])


# ------------------------------------------------------------------- PESQ, STOI
def speech_shaped_noise(clean, snr_db, rng):
    """Noise with the clean signal's magnitude spectrum (random phase) at snr_db."""
    spec = np.fft.rfft(clean)
    phase = np.exp(2j * np.pi * rng.random(len(spec)))
    noise = np.fft.irfft(np.abs(spec) * phase, len(clean))
    return noise * np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_db / 10))


def test_pesq_stoi_sanity():
    # Speech-shaped noise: white noise on this narrow-band signal drives PESQ to
    # its floor at any SNR, which would make the ordering checks meaningless.
    rng = np.random.default_rng(5)
    clean = _speech(3.0)
    light = clean + speech_shaped_noise(clean, 20, rng)
    heavy = clean + speech_shaped_noise(clean, 0, rng)
    assert pesq_wb(clean, clean, FS) > 4.5
    assert stoi(clean, clean, FS) > 0.99
    p_light, p_heavy = pesq_wb(clean, light, FS), pesq_wb(clean, heavy, FS)
    s_light, s_heavy = stoi(clean, light, FS), stoi(clean, heavy, FS)
    assert 1.0 <= p_heavy < 1.5 < 2.0 < p_light < 4.0
    assert 0.4 < s_heavy < s_light - 0.1 and 0.85 < s_light < 1.0
    # Another rate is resampled to 16 kHz: about the same score.
    up = np.repeat(clean, 2)  # crude 32 kHz versions of the same signals
    assert pesq_wb(up, np.repeat(light, 2), 2 * FS) == pytest.approx(p_light, abs=0.4)
    metrics = registry.waveform_scores(clean, light, FS, utt="x")
    assert list(metrics) == ["ssnr", "pesq", "stoi", "sisdr"]
    assert metrics["pesq"] == pytest.approx(p_light)
    assert metrics["ssnr"] == pytest.approx(segmental_snr(clean, light, FS))
    assert registry.waveform_scores(clean, light, FS, names=["stoi"]) == {
        "stoi": pytest.approx(s_light)
    }


def test_pesq_failure_is_nan_with_warning(caplog, monkeypatch):
    import pesq

    clean = _speech(0.2)  # under PESQ's 1/4 s minimum
    with caplog.at_level(logging.WARNING):
        assert math.isnan(pesq_wb(clean, clean, FS, utt="short_one"))
    assert "short_one" in caplog.text and "BufferTooShortError" in caplog.text

    def no_utterances(*args, **kwargs):
        raise pesq.NoUtterancesError(b"No utterances detected")

    monkeypatch.setattr(pesq, "pesq", no_utterances)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert math.isnan(pesq_wb(_speech(1.0), _speech(1.0), FS, utt="quiet_one"))
    assert "quiet_one" in caplog.text and "NoUtterancesError" in caplog.text


def test_stoi_too_short_is_nan(caplog):
    clean = _speech(0.1)
    with caplog.at_level(logging.WARNING):
        assert math.isnan(stoi(clean, clean, FS, utt="tiny"))
    assert "tiny" in caplog.text


def test_ssnr_definition_documented():
    text = se_metrics.SSNR_DEFINITION
    assert "30 ms" in text and "75%" in text and "[-10, 35]" in text
    assert "ALL frames" in text


# --------------------------------------------------------------------------- SER
def test_classification_metrics_match_sklearn():
    rng = np.random.default_rng(6)
    ref = list(rng.choice(CLASSES, 300, p=[0.1, 0.2, 0.3, 0.4]))
    hyp = [r if rng.random() < 0.5 else rng.choice(CLASSES) for r in ref]
    got = classification_metrics(ref, hyp, CLASSES)
    # Independent: integer codes, library defaults, a report dict.
    codes = {c: i for i, c in enumerate(CLASSES)}
    r = [codes[x] for x in ref]
    h = [codes[x] for x in hyp]
    assert got["f1_macro"] == pytest.approx(f1_score(r, h, average="macro"))
    assert got["f1_micro"] == pytest.approx(f1_score(r, h, average="micro"))
    assert got["accuracy"] == pytest.approx(np.mean(np.array(r) == np.array(h)))
    assert got["precision_macro"] == pytest.approx(
        precision_score(r, h, average="macro")
    )
    assert got["recall_macro"] == pytest.approx(recall_score(r, h, average="macro"))
    report = classification_report(r, h, output_dict=True)
    for c in CLASSES:
        assert got["f1_per_class"][c] == pytest.approx(
            report[str(codes[c])]["f1-score"]
        )
        assert got["support"][c] == report[str(codes[c])]["support"]
    assert got["confusion_matrix"] == confusion_matrix(r, h).tolist()
    assert got["num_utts"] == 300


def test_classification_absent_class_counts_and_unknown_label(caplog):
    with caplog.at_level(logging.WARNING):
        got = classification_metrics(["A", "S"], ["A", "S"], CLASSES)
    assert got["f1_per_class"] == {"A": 1.0, "S": 1.0, "H": 0.0, "N": 0.0}
    assert got["f1_macro"] == 0.5 and "no reference" in caplog.text
    with pytest.raises(MeritInputError, match=r"hypothesis.*\['X'\]"):
        classification_metrics(["A"], ["X"], CLASSES)


def test_ccc():
    rng = np.random.default_rng(7)
    x = rng.normal(4, 1, 500)
    y = 0.5 * x + rng.normal(1, 0.5, 500)
    # Independent form: 2 rho sx sy / (sx^2 + sy^2 + (mx - my)^2).
    rho = np.corrcoef(x, y)[0, 1]
    want = (
        2 * rho * x.std() * y.std() / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    )
    assert ccc(x, y) == pytest.approx(want)
    assert ccc(x, x) == pytest.approx(1.0)
    assert ccc(x, 2 * x.mean() - x) == pytest.approx(-1.0)
    res = attribute_metrics(np.c_[x, y], np.c_[x, x], ["aro", "val"])
    assert res["ccc"]["aro"] == pytest.approx(1.0)
    assert res["ccc_mean"] == pytest.approx((1 + ccc(y, x)) / 2)


# ------------------------------------------------------------------ significance
def _pair(n, seed, agree=0.6):
    rng = np.random.default_rng(seed)
    ref = list(rng.choice(CLASSES, n))
    a = [r if rng.random() < 0.7 else rng.choice(CLASSES) for r in ref]
    b = [x if rng.random() < agree else rng.choice(CLASSES) for x in a]
    return ref, a, b


def test_count_statistics_match_sklearn():
    ref, a, _ = _pair(80, 8)
    codes = {c: i for i, c in enumerate(CLASSES)}
    r, h = np.array([codes[x] for x in ref]), np.array([codes[x] for x in a])
    eye = np.eye(4)
    tp, pred, support = (
        (eye[h] * (h == r)[:, None]).sum(0),
        eye[h].sum(0),
        eye[r].sum(0),
    )
    expected = {
        "f1_macro": f1_score(r, h, average="macro", labels=range(4), zero_division=0),
        "f1_micro": f1_score(r, h, average="micro"),
        "accuracy": np.mean(r == h),
        "precision_macro": precision_score(r, h, average="macro", zero_division=0),
        "recall_macro": recall_score(r, h, average="macro", zero_division=0),
    }
    # The ICBHI scores (also count statistics) are checked in
    # tests/scoring/test_icbhi_score.py: they need the class list's "N".
    assert set(COUNT_STATISTICS) - set(expected) == set(ICBHI_NAMES)
    for name in expected:
        assert count_statistic(name, tp, pred, support) == pytest.approx(expected[name])


def test_randomization_exact_matches_brute_force():
    ref, a, b = _pair(24, 19, agree=0.55)
    d = [i for i in range(len(ref)) if a[i] != b[i]]
    assert len(d) == 7
    observed = f1_score(ref, a, average="macro", labels=CLASSES, zero_division=0) - (
        f1_score(ref, b, average="macro", labels=CLASSES, zero_division=0)
    )
    hits = 0
    for swaps in itertools.product([False, True], repeat=len(d)):
        x, y = list(a), list(b)
        for i, s in zip(d, swaps):
            if s:
                x[i], y[i] = b[i], a[i]
        diff = f1_score(ref, x, average="macro", labels=CLASSES, zero_division=0) - (
            f1_score(ref, y, average="macro", labels=CLASSES, zero_division=0)
        )
        hits += abs(diff) >= abs(observed) - 1e-12
    brute = hits / 2 ** len(d)

    exact = paired_randomization_test(ref, a, b, CLASSES, exact=True)
    assert exact.p_value == pytest.approx(brute, abs=1e-12)
    assert exact.difference == pytest.approx(observed)
    auto = paired_randomization_test(ref, a, b, CLASSES)  # 2**D <= 10000: exact
    assert auto.p_value == exact.p_value and "exact" in auto.method
    sampled = paired_randomization_test(ref, a, b, CLASSES, exact=False, seed=3)
    assert sampled.p_value == pytest.approx(brute, abs=0.02)
    assert "10000 rounds" in sampled.method
    again = paired_randomization_test(ref, a, b, CLASSES, exact=False, seed=3)
    assert again.p_value == sampled.p_value  # seeded


def test_randomization_extremes():
    ref, a, _ = _pair(200, 10)
    same = paired_randomization_test(ref, a, list(a), CLASSES)
    assert same.p_value == 1.0 and same.difference == 0.0
    rng = np.random.default_rng(11)
    random = list(rng.choice(CLASSES, len(ref)))
    res = paired_randomization_test(ref, list(ref), random, CLASSES, rounds=2000)
    assert res.difference > 0.5 and res.p_value == pytest.approx(1 / 2001)
    swapped = paired_randomization_test(ref, random, list(ref), CLASSES, rounds=2000)
    assert swapped.difference == pytest.approx(-res.difference)
    with pytest.raises(MeritInputError, match="equal lengths"):
        paired_randomization_test(ref, a[:-1], a, CLASSES)


def test_wilcoxon_against_scipy_and_enumeration():
    rng = np.random.default_rng(12)
    x = rng.normal(2.0, 1.0, 40)
    y = x - rng.normal(0.3, 0.5, 40)
    res = paired_wilcoxon(x, y)
    assert res.p_value == pytest.approx(wilcoxon(x - y).pvalue)  # differences form
    assert res.difference == pytest.approx(np.mean(x - y))
    # Exact null distribution by enumerating the 2**8 sign patterns of the ranks.
    d = np.array([0.3, -0.1, 0.7, 0.25, -0.45, 0.9, 0.55, 0.05])
    ranks = np.argsort(np.argsort(np.abs(d))) + 1
    w_plus = ranks[d > 0].sum()
    total = ranks.sum()
    stats = [sum(r for r, s in zip(ranks, signs) if s)
             for signs in itertools.product([0, 1], repeat=len(d))]  # fmt: skip
    extreme = max(w_plus, total - w_plus)
    p = np.mean([max(s, total - s) >= extreme for s in stats])
    assert paired_wilcoxon(d, np.zeros_like(d)).p_value == pytest.approx(p)


def test_wilcoxon_nan_and_ties(caplog):
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.5, 7.0])
    y = np.array([0.5, 2.5, 3.0, np.nan, 4.0, 5.0, 6.0])
    with caplog.at_level(logging.WARNING):
        res = paired_wilcoxon(x, y, what="pesq")
    assert res.excluded == 2 and res.num_utts == 5
    assert "pesq" in caplog.text
    keep = np.isfinite(x) & np.isfinite(y)
    assert res.p_value == pytest.approx(wilcoxon(x[keep], y[keep]).pvalue)
    same = paired_wilcoxon([1.0, 2.0], [1.0, 2.0])
    assert same.p_value == 1.0


# ---------------------------------------------------------------------- registry
def _tiny_input(kind: str):
    """Arguments of a metric function of ``kind`` on a small input."""
    rng = np.random.default_rng(13)
    if kind == "label":
        return (["A", "S", "H", "N", "A", "S"], ["A", "S", "N", "N", "H", "S"],
                CLASSES)  # fmt: skip
    if kind == "vector":
        ref = rng.uniform(1, 7, (8, 3))
        return ref, ref + rng.normal(0, 0.5, ref.shape), ["aro", "val", "dom"]
    clean = _speech(1.0)
    return clean, clean + speech_shaped_noise(clean, 10, rng), FS


def test_every_registry_row_scores_its_kind():
    """Each row's function runs on a tiny input of its kind and gives a float;
    names are unique, kinds and paired tests are ones the scoring knows."""
    names = [m.name for m in registry.METRICS]
    assert len(set(names)) == len(names) and names == registry.all_names()
    for m in registry.METRICS:
        assert m.kind in ("label", "vector", "waveform"), m.name
        assert m.test in ("randomization", "wilcoxon", None), m.name
        assert m.unit in ("", "dB") and m.digits >= 0 and m.header, m.name
        args = _tiny_input(m.kind)
        value = m.fn(*args, utt="u") if m.kind == "waveform" else m.fn(*args)
        assert isinstance(value, float) and math.isfinite(value), m.name
    # The label rows are the count statistics the randomization test recomputes.
    label = [m for m in registry.METRICS if m.kind == "label"]
    assert {m.name for m in label} <= set(COUNT_STATISTICS)
    assert all(m.test == "randomization" for m in label)
    # Every kind has a headline metric (the columns of comparisons).
    assert {m.kind for m in registry.METRICS if m.headline} == {
        "label",
        "vector",
        "waveform",
    }


def test_registry_values_match_the_metric_functions():
    ref, hyp, classes = _tiny_input("label")
    want = classification_metrics(ref, hyp, classes)
    for m in registry.metrics_of("label"):
        assert m.fn(ref, hyp, classes) == pytest.approx(want[m.name])
    assert registry.label_details(ref, hyp, classes) == want
    ref, hyp, names = _tiny_input("vector")
    (ccc_row,) = registry.metrics_of("vector")
    assert ccc_row.fn(ref, hyp, names) == pytest.approx(
        np.mean([ccc(ref[:, i], hyp[:, i]) for i in range(3)])
    )
    chosen = registry.metrics_of("waveform", ["pesq", "f1_macro"])
    assert [m.name for m in chosen] == ["pesq"]
    registry.check_names(["pesq", "f1_macro"])
    with pytest.raises(MeritInputError, match=r"\['f1', 'snr'\] are not metrics"):
        registry.check_names(["f1", "pesq", "snr"])
