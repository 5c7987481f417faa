"""Automatic speech recognition: transcripts (the data ``text``) of speech without
any, or of noisy speech, by ``transformers`` ASR models."""

from espnet2_merit.asr.transcriber import Transcriber

__all__ = ["Transcriber"]
