"""espnet2_merit.scoring.set_scoring on bad text inputs (errors naming the file
and line) and on damaged noisy-input caches (recomputed, never trusted)."""

import json

import numpy as np
import pytest

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import VectorTarget
from espnet2_merit.scoring import set_scoring
from espnet2_merit.scoring.set_scoring import (
    read_floats,
    read_noisy_cache,
    score_set,
    write_noisy_cache,
)

UTTS = ["u1", "u2", "u3"]
ATTR = VectorTarget("emotion_attr", ["arousal", "valence"])


def _lines(path, rows):
    path.write_text("".join(f"{k} {v}\n" for k, v in rows), encoding="utf-8")
    return path


def test_read_floats_names_the_line(tmp_path):
    path = _lines(tmp_path / "f", [("u1", "1 2"), ("u2", "3 x"), ("u3", "5 6")])
    with pytest.raises(MeritInputError, match=r"/f:2: 'u2': not numbers"):
        read_floats(path, UTTS)
    _lines(path, [("u1", "1 2"), ("u2", "3 nan"), ("u3", "5 6")])
    with pytest.raises(MeritInputError, match=r"/f:2: 'u2': NaN or Inf in '3 nan'"):
        read_floats(path, UTTS)
    _lines(path, [("u1", "1 2"), ("u2", "3 4"), ("u3", "5 6 7")])
    with pytest.raises(MeritInputError, match=r"/f:3: 'u3' has 3 numbers, .*'u1' 2"):
        read_floats(path, UTTS)
    with pytest.raises(MeritInputError, match=r"/f: no entry for utterance 'u9'"):
        read_floats(path, ["u9"])
    _lines(path, [("u3", "5 6"), ("u1", "1 2")])
    assert read_floats(path, ["u1", "u3"]).tolist() == [[1, 2], [5, 6]]


@pytest.fixture
def text_set(tmp_path):
    """A reference dir (wav.scp keys, attributes) and a decoded attribute task."""
    ref, hyp = tmp_path / "ref", tmp_path / "hyp"
    ref.mkdir()
    hyp.mkdir()
    _lines(ref / "wav.scp", [(u, f"/nowhere/{u}.wav") for u in UTTS])
    _lines(ref / "emotion_attr", [("u1", "1 2"), ("u2", "3 5"), ("u3", "6 4")])
    manifest = {"tasks": {"attr": ATTR.describe()}, "files": ["emotion_attr"]}
    (hyp / "outputs.json").write_text(json.dumps(manifest))
    return ref, hyp


def test_vector_predictions_must_be_finite_and_of_the_task_width(text_set, tmp_path):
    ref, hyp = text_set
    rows = [("u1", "1.5 2"), ("u2", "3 4.5"), ("u3", "5 5")]
    _lines(hyp / "emotion_attr", rows)
    summary = score_set(ref, hyp, tmp_path / "score")
    assert list(summary["tasks"]["attr"]["details"]["ccc"]) == ["arousal", "valence"]
    _lines(hyp / "emotion_attr", rows[:2] + [("u3", "5 inf")])
    with pytest.raises(MeritInputError, match=r"hyp/emotion_attr:3: 'u3': NaN or Inf"):
        score_set(ref, hyp, tmp_path / "score")
    _lines(hyp / "emotion_attr", [(u, "1 2 3") for u in UTTS])
    with pytest.raises(MeritInputError, match=r"has 3 columns, .* the task 2 \(arou"):
        score_set(ref, hyp, tmp_path / "score")


def test_damaged_noisy_cache_is_recomputed(tmp_path):
    inputs = [_lines(tmp_path / "wav.scp", [(u, "x") for u in UTTS])]
    scores = {u: {"ssnr": float(i), "pesq": 1.0 + i} for i, u in enumerate(UTTS)}
    write_noisy_cache(tmp_path, inputs, scores)
    assert read_noisy_cache(tmp_path, inputs, UTTS) == scores
    assert read_noisy_cache(tmp_path, inputs, UTTS[:1]) == {"u1": scores["u1"]}
    path = tmp_path / set_scoring.NOISY_CACHE
    cache = json.loads(path.read_text())
    # An utterance without one metric: that metric counts as not cached.
    del cache["scores"]["u2"]["pesq"]
    path.write_text(json.dumps(cache))
    assert read_noisy_cache(tmp_path, inputs, UTTS) == {
        u: {"ssnr": v["ssnr"]} for u, v in scores.items()
    }
    # An utterance it does not have, or unreadable JSON: nothing cached.
    assert read_noisy_cache(tmp_path, inputs, UTTS + ["u4"]) == {}
    path.write_text('{"inputs": ')
    assert read_noisy_cache(tmp_path, inputs, UTTS) == {}
    # Another input list (a new wav.scp): stale.
    write_noisy_cache(tmp_path, inputs, scores)
    _lines(inputs[0], [(u, "y") for u in UTTS])
    assert read_noisy_cache(tmp_path, inputs, UTTS) == {}
    # NaN scores (PESQ failures) survive the round trip.
    write_noisy_cache(tmp_path, inputs, {"u1": {"pesq": float("nan")}})
    assert np.isnan(read_noisy_cache(tmp_path, inputs, ["u1"])["u1"]["pesq"])


def test_noisy_cache_values_are_floats_or_the_cache_is_not_used(tmp_path):
    inputs = [_lines(tmp_path / "wav.scp", [(u, "x") for u in UTTS])]
    write_noisy_cache(tmp_path, inputs, {u: {"ssnr": 1.5} for u in UTTS})
    path = tmp_path / set_scoring.NOISY_CACHE
    cache = json.loads(path.read_text())
    cache["scores"]["u1"]["ssnr"] = 3  # an integer, written by hand
    cache["scores"]["u2"]["extra"] = 7.0  # a metric the others lack
    path.write_text(json.dumps(cache))
    got = read_noisy_cache(tmp_path, inputs, UTTS)
    assert got == {"u1": {"ssnr": 3.0}, "u2": {"ssnr": 1.5}, "u3": {"ssnr": 1.5}}
    assert all(type(v["ssnr"]) is float for v in got.values())
    for bad in ("high", None, [1.0]):
        cache["scores"]["u3"]["ssnr"] = bad
        path.write_text(json.dumps(cache))
        assert read_noisy_cache(tmp_path, inputs, UTTS) == {}


def test_routing_statistics_of_a_decoded_set(text_set, tmp_path):
    """Frames where the clean speech dominates go to expert 0, the others to
    expert 1: disjoint routing (TV 1); another set routes both kinds alike."""
    import soundfile

    ref, hyp = text_set
    fs, shift = 16000, 320
    clean = np.zeros(4 * shift)
    clean[: 2 * shift] = 0.5  # frames 0-1 speech, 2-3 noise
    noisy = clean + 0.01
    scp = {"wav.scp": noisy, "spk1.scp": clean}
    for name, wav in scp.items():
        rows = []
        for u in UTTS:
            path = tmp_path / f"{name}_{u}.wav"
            soundfile.write(path, wav, fs, subtype="FLOAT")
            rows.append((u, str(path)))
        _lines(ref / name, rows)
    manifest = json.loads((hyp / "outputs.json").read_text())
    manifest["frame_shift_sec"] = shift / fs
    (hyp / "outputs.json").write_text(json.dumps(manifest))
    (hyp / "routing").mkdir()
    _lines(hyp / "emotion_attr", [("u1", "1 2"), ("u2", "3 5"), ("u3", "6 4")])
    _lines(hyp / "routing" / "ser_experts", [(u, "0 0 1 1") for u in UTTS])
    _lines(hyp / "routing" / "se_experts", [(u, "0 1 0 1") for u in UTTS])
    got = score_set(ref, hyp, tmp_path / "score")["routing"]
    assert got["ser"]["speech_noise_tv"] == pytest.approx(1.0)
    assert got["se"]["speech_noise_tv"] == pytest.approx(0.0)
    for task in ("ser", "se"):
        assert got[task]["usage_entropy"] == pytest.approx(1.0)
        assert got[task]["speech_frames"] == pytest.approx(0.5)
    assert "mean_experts" not in got["ser"]  # an older decoding: no counts
    # with the number of experts of each frame (top-p): their mean over frames
    counts = [("u1", "1 1 2 2"), ("u2", "1 1 1 1"), ("u3", "3 1 1 1")]
    _lines(hyp / "routing" / "ser_expert_count", counts)
    got = score_set(ref, hyp, tmp_path / "score2")["routing"]
    assert got["ser"]["mean_experts"] == pytest.approx(16 / 12)
    assert got["ser"]["speech_noise_tv"] == pytest.approx(1.0)
    assert "mean_experts" not in got["se"]
    _lines(hyp / "routing" / "ser_expert_count", counts[:2] + [("u3", "1 1")])
    with pytest.raises(MeritInputError, match=r"ser_expert_count: utterance 'u3'"):
        score_set(ref, hyp, tmp_path / "score3")
