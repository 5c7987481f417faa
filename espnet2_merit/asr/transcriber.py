"""Transcripts of speech by any Hugging Face ``transformers`` ASR model.

CTC models (wav2vec2, HuBERT, WavLM, data2vec-audio ... ``AutoModelForCTC``)
decode greedily; sequence-to-sequence ones (Whisper, Speech2Text ...
``AutoModelForSpeechSeq2Seq``) generate greedily up to ``max_new_tokens``. The
model and its processor come from a hub name or a local ``save_pretrained``
folder.

Batching never changes a transcript (up to floating-point rounding): a CTC model
whose feature extractor returns an attention mask is run on zero-padded batches
with the mask and each utterance's logits cut to its own frames; one without (the
group-norm wav2vec2 Base, whose normalisation spans the padded length) is batched
only over utterances of equal length; Whisper pads every utterance to its 30 s
window anyway, and an utterance longer than that is decoded alone (long-form,
with timestamps).
"""

import logging
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError

logger = logging.getLogger(__name__)


class Transcriber:
    """Speech -> text with a ``transformers`` ASR model."""

    @typechecked
    def __init__(
        self,
        model_name_or_path: str,
        device: str = "cpu",
        batch_size: int = 8,
        local_files_only: bool = False,
        language: Optional[str] = None,
        max_new_tokens: int = 128,
    ):
        """Load the model and its processor.

        Args:
            model_name_or_path: Hub name (``openai/whisper-small``,
                ``facebook/wav2vec2-large-960h-lv60-self``) or a local folder.
            device: Torch device (``cpu``, ``cuda``, ``cuda:1``).
            batch_size: Utterances per forward pass (no effect on the output).
            local_files_only: Never download (the cache or the folder only).
            language: Whisper's spoken language (``en``, ``english``); None lets
                a multilingual Whisper detect it per utterance. Other models
                refuse it.
            max_new_tokens: Longest generated transcript of a
                sequence-to-sequence model, in tokens (per 30 s window).

        Raises:
            MeritInputError: The model cannot be loaded, is no CTC or
                sequence-to-sequence ASR model, or refuses the options.
        """
        import torch
        from transformers import (
            AutoConfig,
            AutoModelForCTC,
            AutoModelForSpeechSeq2Seq,
            AutoProcessor,
        )
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_CTC_MAPPING_NAMES,
            MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES,
        )

        what = f"asr model {model_name_or_path!r}"
        if batch_size < 1 or max_new_tokens < 1:
            raise MeritInputError(
                f"{what}: batch_size and max_new_tokens must be positive, got "
                f"{batch_size} and {max_new_tokens}"
            )
        try:
            self.device = torch.device(device)
        except RuntimeError as e:
            raise MeritInputError(f"{what}: device {device!r}: {e}") from None
        try:
            config = AutoConfig.from_pretrained(
                model_name_or_path, local_files_only=local_files_only
            )
        except (OSError, ValueError) as e:
            raise MeritInputError(f"{what}: cannot load its config ({e})") from None
        if config.model_type in MODEL_FOR_CTC_MAPPING_NAMES:
            self.kind, auto = "ctc", AutoModelForCTC
        elif config.model_type in MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES:
            self.kind, auto = "seq2seq", AutoModelForSpeechSeq2Seq
        else:
            raise MeritInputError(
                f"{what}: a {config.model_type!r} model is neither a CTC nor a "
                "sequence-to-sequence ASR model (AutoModelForCTC, "
                "AutoModelForSpeechSeq2Seq)"
            )
        try:
            self.processor = AutoProcessor.from_pretrained(
                model_name_or_path, local_files_only=local_files_only
            )
            model = auto.from_pretrained(
                model_name_or_path, local_files_only=local_files_only
            )
        except (OSError, ValueError) as e:
            raise MeritInputError(f"{what}: cannot load it ({e})") from None
        self.model = model.to(self.device).eval()
        self.feature_extractor = getattr(
            self.processor, "feature_extractor", self.processor
        )
        self.fs = int(self.feature_extractor.sampling_rate)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.whisper = config.model_type == "whisper"
        self.generate_kwargs: Dict[str, Any] = {}
        if self.whisper:
            multilingual = getattr(model.generation_config, "is_multilingual", False)
            if multilingual:  # never translate: transcribe in the spoken language
                self.generate_kwargs["task"] = "transcribe"
            if language is not None:
                if not multilingual:
                    raise MeritInputError(
                        f"{what}: an English-only Whisper takes no language "
                        f"(got {language!r})"
                    )
                self.generate_kwargs["language"] = _whisper_language(
                    what, language, model.generation_config
                )
        elif language is not None:
            raise MeritInputError(
                f"{what}: language={language!r} is for Whisper models; a "
                f"{config.model_type!r} model transcribes the language it was "
                "trained on"
            )
        # Whisper's feature extractor pads (and cuts) to its window (30 s)
        self.window = getattr(self.feature_extractor, "n_samples", None)
        # CTC logits are cut to each utterance's frames: without the model's
        # frame count of a length, a padded batch could not be cut
        self.masked = bool(
            getattr(self.feature_extractor, "return_attention_mask", False)
        ) and (self.kind != "ctc" or hasattr(model, "_get_feat_extract_output_lengths"))

    def transcribe(
        self,
        wavs: Sequence[np.ndarray],
        fs: int,
        names: Optional[Sequence[str]] = None,
    ) -> List[str]:
        """Transcribe utterances.

        Args:
            wavs: Utterances, each (T,) float samples (mono).
            fs: Their sampling rate; resampled (torchaudio) to the model's
                (``self.fs``) when it differs.
            names: Utterance ids, for error messages (default: their index).

        Returns:
            One transcript per utterance, in order, with whitespace collapsed to
            single spaces (no newline); ``""`` when the model recognised no word.

        Raises:
            MeritInputError: A waveform is not 1-D, is empty or not finite, or
                ``fs`` is not positive.
        """
        import torch

        if fs < 1:
            raise MeritInputError(f"sampling rate must be positive, got {fs}")
        if names is not None and len(names) != len(wavs):
            raise ValueError(f"{len(names)} names for {len(wavs)} waveforms")
        prepared = []
        for i, wav in enumerate(wavs):
            name = names[i] if names is not None else f"waveform {i}"
            wav = np.asarray(wav, dtype=np.float32)
            if wav.ndim != 1 or wav.size == 0:
                raise MeritInputError(
                    f"{name}: expected a non-empty 1-D waveform, got shape "
                    f"{tuple(wav.shape)}"
                )
            if not np.isfinite(wav).all():
                raise MeritInputError(f"{name}: contains NaN or Inf samples")
            if fs != self.fs:
                import torchaudio

                wav = torchaudio.functional.resample(
                    torch.from_numpy(wav), orig_freq=fs, new_freq=self.fs
                ).numpy()
            prepared.append(wav)
        texts: List[str] = [""] * len(prepared)
        for batch in self._batches([len(w) for w in prepared]):
            out = self._run([prepared[i] for i in batch])
            for i, text in zip(batch, out):
                texts[i] = " ".join(text.split())
        return texts

    def _batches(self, lengths: List[int]) -> List[List[int]]:
        """Indices of the utterances of each forward pass: longest first (little
        padding); only equal lengths together where padding would change the
        output, long-form Whisper utterances alone."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batches: List[List[int]] = []
        for i in order:
            last = batches[-1] if batches else None
            alone = self.window is not None and lengths[i] > self.window
            fits = (
                last is not None
                and len(last) < self.batch_size
                and not alone
                and not (self.window is not None and lengths[last[0]] > self.window)
                and (
                    self.masked
                    or self.window is not None
                    or lengths[last[0]] == lengths[i]
                )
            )
            if fits:
                last.append(i)
            else:
                batches.append([i])
        return batches

    def _run(self, wavs: List[np.ndarray]) -> List[str]:
        import torch

        long_form = self.window is not None and len(wavs[0]) > self.window
        kwargs: Dict[str, Any] = dict(sampling_rate=self.fs, return_tensors="pt")
        if self.window is None:
            kwargs["padding"] = True  # to the longest of the batch
        elif long_form:  # the whole utterance, not its first 30 s
            kwargs.update(truncation=False, padding="longest")
        if self.masked or long_form:
            kwargs["return_attention_mask"] = True
        inputs = self.feature_extractor(wavs, **kwargs)
        dtype = next(self.model.parameters()).dtype
        inputs = {
            k: v.to(self.device, dtype) if v.is_floating_point() else v.to(self.device)
            for k, v in inputs.items()
        }
        with torch.inference_mode():
            if self.kind == "ctc":
                logits = self.model(**inputs).logits
                ids = logits.argmax(dim=-1)
                lengths = [ids.shape[1]] * len(wavs)
                mask = inputs.get("attention_mask")
                if mask is not None and len(wavs) > 1:
                    lengths = self.model._get_feat_extract_output_lengths(
                        mask.sum(-1)
                    ).tolist()
                seqs = [row[:n].tolist() for row, n in zip(ids.cpu(), lengths)]
            else:
                generated = self.model.generate(
                    **inputs, max_new_tokens=self.max_new_tokens, **self.generate_kwargs
                )
                if not torch.is_tensor(generated):  # a dict with long-form extras
                    generated = generated["sequences"]
                seqs = generated.cpu().tolist()
        return self.processor.batch_decode(seqs, skip_special_tokens=True)


def _whisper_language(what: str, language: str, generation_config) -> str:
    """The language token of a Whisper model's ``generation_config.lang_to_id``
    for a code or a name (``en``, ``english``, ``<|en|>``)."""
    from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

    lang = language.lower()
    token = lang if lang.startswith("<|") else None
    if token is None and lang in TO_LANGUAGE_CODE:
        token = f"<|{TO_LANGUAGE_CODE[lang]}|>"
    elif token is None:
        token = f"<|{lang}|>"
    known = getattr(generation_config, "lang_to_id", None) or {}
    if token not in known:
        raise MeritInputError(
            f"{what}: language={language!r} is not one of the model's "
            f"({' '.join(sorted(t.strip('<|>') for t in known)) or 'none'})"
        )
    return token
