"""The ASR transcriber on tiny random models loaded offline from local folders:
CTC (wav2vec2 with layer norm and an attention mask, or group norm without) and
sequence-to-sequence (Whisper, multilingual and English-only): strings out,
batching that never changes a transcript, resampling, and clear errors."""

import numpy as np
import pytest
import torch
import torchaudio

from espnet2_merit.asr import Transcriber
from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.asr_checkpoint import (
    CTC_CHARS,
    make_ctc_checkpoint,
    make_whisper_checkpoint,
)

FS = 16000


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def group_ctc(tmp_path_factory):
    return make_ctc_checkpoint(
        tmp_path_factory.mktemp("asr") / "group", feat_extract_norm="group"
    )


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    return make_whisper_checkpoint(tmp_path_factory.mktemp("asr") / "whisper")


@pytest.fixture(scope="module")
def english_whisper(tmp_path_factory):
    return make_whisper_checkpoint(
        tmp_path_factory.mktemp("asr") / "whisper_en", multilingual=False
    )


def _wavs(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


def _load(path, **kw):
    return Transcriber(str(path), local_files_only=True, **kw)


def _one_by_one(transcriber, wavs, fs=FS):
    return [transcriber.transcribe([w], fs)[0] for w in wavs]


def test_ctc_model_loads_offline_and_gives_one_clean_string_per_utterance(tiny_asr):
    asr = _load(tiny_asr)
    assert asr.kind == "ctc" and asr.fs == FS
    texts = asr.transcribe(_wavs([16000, 8000, 12345]), FS)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    assert any(texts)  # random weights still emit characters
    for text in texts:
        assert text == " ".join(text.split())  # no newline, no double space
        assert set(text) <= set(CTC_CHARS) | {" "}
    assert asr.transcribe([], FS) == []


def test_masked_ctc_batches_unequal_lengths_with_the_same_transcripts(tiny_asr):
    asr = _load(tiny_asr, batch_size=4)
    lengths = [16000, 8000, 12345, 16000, 5000]
    assert asr.masked
    # padded batches really happen: unequal lengths share a forward pass
    assert [len(b) for b in asr._batches(lengths)] == [4, 1]
    wavs = _wavs(lengths)
    batched = asr.transcribe(wavs, FS)
    assert batched == _one_by_one(asr, wavs)
    # without cutting each utterance's logits to its own frames, the padding's
    # frames would be decoded too: the short one's transcript would change
    ids = asr.model(
        **asr.feature_extractor(
            wavs[:2], sampling_rate=FS, padding=True, return_tensors="pt"
        )
    ).logits.argmax(-1)
    assert asr.processor.batch_decode(ids[1:].tolist())[0] != batched[1]


def test_group_norm_ctc_batches_only_equal_lengths(group_ctc):
    asr = _load(group_ctc, batch_size=4)
    assert not asr.masked  # no attention mask: padding would change the output
    lengths = [16000, 8000, 12345, 16000, 8000]
    batches = asr._batches(lengths)
    assert sorted(map(sorted, batches)) == [[0, 3], [1, 4], [2]]
    wavs = _wavs(lengths)
    assert asr.transcribe(wavs, FS) == _one_by_one(asr, wavs)
    # a zero-padded batch would indeed change the short utterance's transcript
    padded = np.zeros((2, 16000), np.float32)
    padded[0], padded[1, :8000] = wavs[0], wavs[1]
    inputs = asr.feature_extractor(list(padded), sampling_rate=FS, return_tensors="pt")
    ids = asr.model(**inputs).logits.argmax(-1)[1, :24]  # its 24 frames
    assert (
        asr.processor.batch_decode([ids.tolist()])[0]
        != asr.transcribe([wavs[1]], FS)[0]
    )


@pytest.mark.parametrize("fs", [8000, 22050])
def test_other_sampling_rates_are_resampled(tiny_asr, fs):
    asr = _load(tiny_asr)
    wav = _wavs([fs])[0]
    at_model_rate = torchaudio.functional.resample(
        torch.from_numpy(wav), orig_freq=fs, new_freq=FS
    ).numpy()
    text = asr.transcribe([wav], fs)[0]
    assert text == asr.transcribe([at_model_rate], FS)[0]
    assert text != asr.transcribe([wav], FS)[0]  # taken as 16 kHz it differs


def test_bad_models_and_options_are_errors_naming_the_model(
    tiny_asr, tiny_roberta, tmp_path
):
    missing = tmp_path / "no_such_model"
    with pytest.raises(MeritInputError, match=f"{missing}.*cannot load its config"):
        _load(missing)
    with pytest.raises(MeritInputError, match=f"{tiny_roberta}.*'roberta' model is"):
        _load(tiny_roberta)
    with pytest.raises(MeritInputError, match=f"{tiny_asr}.*language='en' is for"):
        _load(tiny_asr, language="en")
    with pytest.raises(MeritInputError, match=f"{tiny_asr}.*batch_size"):
        _load(tiny_asr, batch_size=0)
    with pytest.raises(MeritInputError, match=f"{tiny_asr}.*device 'nowhere'"):
        _load(tiny_asr, device="nowhere")


def test_bad_waveforms_are_errors_naming_the_utterance(tiny_asr):
    asr = _load(tiny_asr)
    good = _wavs([8000])[0]
    with pytest.raises(MeritInputError, match="utt2: expected a non-empty 1-D"):
        asr.transcribe([good, np.zeros((2, 100))], FS, names=["utt1", "utt2"])
    with pytest.raises(MeritInputError, match="waveform 1: expected a non-empty"):
        asr.transcribe([good, np.zeros(0)], FS)
    nan = good.copy()
    nan[3] = np.nan
    with pytest.raises(MeritInputError, match="waveform 0: contains NaN"):
        asr.transcribe([nan], FS)
    with pytest.raises(MeritInputError, match="sampling rate must be positive"):
        asr.transcribe([good], 0)


def test_whisper_generates_strings_batched_as_one_by_one(tiny_whisper):
    asr = _load(tiny_whisper, batch_size=3, max_new_tokens=6)
    assert asr.kind == "seq2seq" and asr.whisper
    # multilingual: transcribe (never translate), the language detected
    assert asr.generate_kwargs == {"task": "transcribe"}
    wavs = _wavs([16000, 8000, 12000])
    texts = asr.transcribe(wavs, FS)
    assert all(isinstance(t, str) and t == " ".join(t.split()) for t in texts)
    assert len(set(texts)) > 1  # the input matters
    assert texts == _one_by_one(asr, wavs)
    assert asr._batches([len(w) for w in wavs]) == [[0, 2, 1]]


def test_whisper_long_utterance_is_decoded_alone_and_whole(tiny_whisper):
    asr = _load(tiny_whisper, batch_size=4, max_new_tokens=6, language="en")
    window = asr.window
    assert asr._batches([window + 1, 1000, 2000]) == [[0], [2, 1]]
    long, short = _wavs([window + FS, FS])
    texts = asr.transcribe([long, short], FS)
    assert texts == _one_by_one(asr, [long, short])
    # the long one is read past its first 30 s (more windows, more tokens)
    assert texts[0] != asr.transcribe([long[:window]], FS)[0]


def test_whisper_language_option(tiny_whisper, english_whisper):
    for language in ("en", "English", "<|en|>"):
        asr = _load(tiny_whisper, language=language)
        assert asr.generate_kwargs == {"task": "transcribe", "language": "<|en|>"}
    with pytest.raises(MeritInputError, match="language='fr' is not one of.*de en"):
        _load(tiny_whisper, language="fr")
    assert _load(english_whisper).generate_kwargs == {}
    with pytest.raises(MeritInputError, match="English-only Whisper takes no"):
        _load(english_whisper, language="en")
