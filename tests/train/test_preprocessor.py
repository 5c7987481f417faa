import numpy as np
import pytest

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import LabelTarget, VectorTarget, WaveformTarget
from espnet2_merit.train.preprocessor import MeritPreprocessor

TARGETS = [
    WaveformTarget("speech_ref1"),
    LabelTarget("emotion", ["A", "S", "H", "N"], "--emotion_list"),
    VectorTarget("emotion_attr", ["arousal", "valence", "dominance"]),
]


def _pre(train=False, targets=TARGETS, **kw):
    return MeritPreprocessor(train, targets, **kw)


def test_labels_and_attributes():
    out = _pre()(
        "u1",
        {"speech": np.zeros(10), "emotion": "H", "emotion_attr": "4.5 2.0 3.25"},
    )
    assert out["emotion"].tolist() == [2]
    np.testing.assert_allclose(out["emotion_attr"], [4.5, 2.0, 3.25])
    assert out["speech"].dtype == np.float32


def test_unknown_label_is_an_error_never_class_zero():
    with pytest.raises(MeritInputError, match="utterance 'u7': emotion label 'X'"):
        _pre()("u7", {"speech": np.zeros(10), "emotion": "X"})


@pytest.mark.parametrize("text", ["4.5 2.0", "a b c", ""])
def test_bad_attributes(text):
    with pytest.raises(MeritInputError, match="3 finite numbers"):
        _pre()("u1", {"speech": np.zeros(10), "emotion_attr": text})


def test_multichannel_and_length_mismatch():
    with pytest.raises(MeritInputError, match="mono"):
        _pre()("u1", {"speech": np.zeros((10, 2))})
    with pytest.raises(MeritInputError, match="speech_ref1 has 9"):
        _pre()("u1", {"speech": np.zeros(10), "speech_ref1": np.zeros(9)})


def test_training_crop_keeps_speech_and_reference_aligned():
    np.random.seed(0)
    speech = np.arange(48000, dtype=np.float32)
    pre = _pre(train=True, fs=16000, max_speech_sec=1.0)
    out = pre("u1", {"speech": speech, "speech_ref1": speech.copy()})
    assert len(out["speech"]) == 16000
    np.testing.assert_array_equal(out["speech"], out["speech_ref1"])
    # Validation never crops.
    assert (
        len(_pre(train=False, max_speech_sec=1.0)("u", {"speech": speech})["speech"])
        == 48000
    )


def test_data_no_task_uses_is_left_out_and_nan_audio_is_an_error():
    out = _pre(targets=TARGETS[1:2])(
        "u1", {"speech": np.zeros(10), "emotion": "A", "emotion_attr": "1 2 3"}
    )
    assert set(out) == {"speech", "emotion"}
    bad = np.zeros(10)
    bad[4] = np.nan
    with pytest.raises(MeritInputError, match="utterance 'u2': 'speech' has NaN"):
        _pre()("u2", {"speech": bad})


def _cropped(pre, uid="u1", n=48000):
    speech = np.arange(n, dtype=np.float32)
    out = pre(uid, {"speech": speech, "speech_ref1": speech + 0.5})
    np.testing.assert_array_equal(out["speech"] + 0.5, out["speech_ref1"])
    return out["speech"]


def test_crop_first_takes_the_first_window_of_speech_and_reference():
    for train in (True, False):
        pre = _pre(train=train, max_speech_sec=1.0, crop="first", crop_valid=True)
        np.testing.assert_array_equal(_cropped(pre), np.arange(16000))
    # Shorter utterances are left whole.
    pre = _pre(train=True, max_speech_sec=1.0, crop="first")
    assert len(_cropped(pre, n=12000)) == 12000


def test_random_crop_moves_but_keeps_speech_and_reference_together():
    np.random.seed(0)
    pre = _pre(train=True, max_speech_sec=1.0)
    starts = {int(_cropped(pre)[0]) for _ in range(5)}
    assert len(starts) > 1


def test_crop_valid():
    whole = _pre(train=False, max_speech_sec=1.0, crop="first")
    assert len(_cropped(whole)) == 48000
    # A random crop of validation data is one window per utterance, every epoch.
    pre = _pre(train=False, max_speech_sec=1.0, crop_valid=True)
    first = _cropped(pre, "dev-7")
    assert len(first) == 16000
    np.random.seed(1)
    np.testing.assert_array_equal(_cropped(pre, "dev-7"), first)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"crop": "middle"}, r"crop: 'middle' is not one of \['random', 'first'\]"),
        ({"max_speech_sec": 0.0}, "max_speech_sec: expected a positive number"),
    ],
)
def test_bad_crop_options(kw, message):
    with pytest.raises(MeritInputError, match=message):
        _pre(train=True, **kw)
