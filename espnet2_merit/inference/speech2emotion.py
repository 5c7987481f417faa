"""``Speech2EmotionEnhance``: a trained model applied to waveforms.

>>> s2e = Speech2EmotionEnhance.from_pretrained("exp/packed/model.zip")
>>> result = s2e(waveform, fs=44100)
>>> result.label, result.probs, result.enhanced, result.routes["ser"].experts
>>> result.tasks["attr"].value          # any task of the model, by name
>>> s2e(waveform, text="what a day")     # a model with a text frontend
"""

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torchaudio
from espnet.nets.pytorch_backend.nets_utils import pad_list
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError
from espnet2_merit.inference.results import (
    EmotionEnhanceResult,
    Routes,
    TaskResult,
    WindowResult,
)
from espnet2_merit.inference.windowing import (
    average,
    central_frames,
    crossfade,
    plan_windows,
)
from espnet2_merit.merit.heads.targets import LabelTarget, VectorTarget

logger = logging.getLogger(__name__)
Audio = Union[np.ndarray, torch.Tensor]
MAX_CHANNELS = 32  # a 2-D array's smaller axis above this is not a channel axis
# Padding of a batch's token ids: MeritTask.build_collate_fn's int_pad_value (the
# text frontend never reads positions past the lengths).
TEXT_PAD = -1
NO_TRANSCRIPT = (
    "this model reads transcripts (text_frontend): give them (text=, texts=; "
    "merit predict --text/--text_file; a Kaldi text file) or an ASR model "
    "(asr_model=, --asr_model)"
)


class Speech2EmotionEnhance:
    """Every task of a trained MERIT model on recordings of any length and rate.

    Input audio may have any sampling rate (resampled to the model's, and
    enhanced speech back to the input's). Multi-channel input is averaged to mono,
    the single channel the model was trained on. Integer samples are scaled as
    soundfile reads them (int16 / 32768). Recordings longer than ``window_sec``
    are processed in windows overlapping by ``overlap_sec``
    (``espnet2_merit.inference.windowing``): peak memory depends on
    ``window_sec`` and ``batch_size`` only.

    A model with a text frontend (``text_frontend: hf_text``) reads each
    recording's transcript too: given (``text=``), or transcribed from the
    recording at the model's rate by ``asr_model``
    (``espnet2_merit.asr.transcriber.Transcriber``). It is tokenised by the text
    frontend's tokenizer (the one training's preprocessor uses), and every window
    of a long recording reads the whole transcript.

    Example:
        >>> s2e = Speech2EmotionEnhance("exp/x/config.yaml", "exp/x/valid.ser_f1_macro.best.pth")
        >>> s2e(np.zeros(16000, dtype=np.float32), fs=16000).probs
    """

    @typechecked
    def __init__(
        self,
        train_config: Union[str, Path],
        model_file: Union[str, Path, None] = None,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 1,
        window_sec: float = 20.0,
        overlap_sec: Optional[float] = None,
        enhance: bool = True,
        allow_random_init: bool = False,
        asr_model: Optional[str] = None,
        asr_conf: Optional[dict] = None,
    ):
        """Load a model.

        Args:
            train_config: The training run's ``config.yaml``.
            model_file: Its weights (``*.pth``).
            device: "cpu", "cuda", "cuda:1", ...
            dtype: Compute dtype: "float32", or "bfloat16"/"float16" (autocast).
            batch_size: Windows processed together.
            window_sec: Longest stretch of audio the model sees at once.
            overlap_sec: Overlap between consecutive windows (default: a fifth of
                the window, at most 4 s).
            enhance: Run waveform tasks (enhancement) too; False runs the
                utterance-level tasks only, and skips the SE task's experts.
            allow_random_init: Accept ``model_file=None`` (debugging only).
            asr_model: An ASR model (name or folder) that transcribes the
                recordings called without ``text`` (models with a text frontend
                only).
            asr_conf: Further options of ``Transcriber``.
        """
        from espnet2_merit.tasks.builder import build_model_from_file

        if dtype not in ("float32", "bfloat16", "float16"):
            raise MeritInputError(f"dtype: '{dtype}' is not float32/bfloat16/float16")
        if batch_size < 1:
            raise MeritInputError(f"batch_size must be >= 1, got {batch_size}")
        if overlap_sec is None:
            overlap_sec = min(4.0, window_sec / 5)
        if not 0 < window_sec or not 0 <= overlap_sec < window_sec:
            raise MeritInputError(
                f"need 0 <= overlap_sec < window_sec, got overlap {overlap_sec} s, "
                f"window {window_sec} s"
            )
        self.model, self.args = build_model_from_file(
            train_config, model_file, device, allow_random_init=allow_random_init
        )
        self.model_file = model_file
        self.device, self.dtype = device, getattr(torch, dtype)
        self.batch_size = batch_size
        self.fs = int(self.args.fs)
        self.tasks = self.model.output_tasks(enhance)
        if not self.tasks:
            raise MeritInputError("this model has only enhancement tasks: enhance=True")
        frontend = self.model.frontend
        self.shift, self.min_samples = frontend.frame_shift(), frontend.min_samples()
        self.window = max(int(window_sec * self.fs), self.min_samples)
        # Whole frames between window starts, so all windows share one frame grid.
        hop = int((window_sec - overlap_sec) * self.fs) // self.shift * self.shift
        self.hop = max(hop, self.shift)
        self.text_frontend = self.model.text_frontend
        if asr_model is not None and self.text_frontend is None:
            raise MeritInputError(
                f"asr_model={asr_model!r}: this model has no text_frontend, it reads "
                "no transcripts"
            )
        if asr_conf is not None and asr_model is None:
            raise MeritInputError("asr_conf is given without asr_model")
        self.asr_model, self.asr_conf = asr_model, dict(asr_conf or {})
        self._transcriber = None

    @property
    def reads_text(self) -> bool:
        """Whether the model reads transcripts (it has a text frontend)."""
        return self.text_frontend is not None

    def check_text_source(self, given: bool) -> None:
        """Errors, before any work, for a call that gives transcripts
        (``given``) or none: a model with a text frontend needs them or an ASR
        model, one without refuses them."""
        if given and not self.reads_text:
            raise MeritInputError(
                "transcripts given, but this model has no text_frontend: it reads "
                "speech only"
            )
        if not given and self.reads_text and self.asr_model is None:
            raise MeritInputError(NO_TRANSCRIPT)

    @staticmethod
    def from_pretrained(model_tag: str, **kwargs) -> "Speech2EmotionEnhance":
        """Load a packed model: a local zip or tar (unpacked safely, once per
        content: ``espnet2_merit.utils.archive``), a URL of one (downloaded by
        espnet_model_zoo), or a Hugging Face repo name ``owner/name``."""
        from espnet2_merit.utils.archive import is_archive, unpack_model

        cachedir = kwargs.pop("cachedir", None)
        url = "://" in model_tag
        if Path(model_tag).is_file():
            return Speech2EmotionEnhance(**unpack_model(model_tag, cachedir), **kwargs)
        if not url and (is_archive(model_tag) or "/" not in model_tag):
            raise MeritInputError(
                f"model '{model_tag}': no such file, and not a URL or a Hugging Face "
                "repo name (owner/name)"
            )
        from espnet_model_zoo.downloader import ModelDownloader

        downloader = ModelDownloader(cachedir)
        if url and is_archive(model_tag):
            archive = downloader.download(model_tag)
            return Speech2EmotionEnhance(**unpack_model(archive, cachedir), **kwargs)
        # A Hugging Face repo: the hub downloads its files one by one (no archive).
        return Speech2EmotionEnhance(
            **downloader.download_and_unpack(model_tag), **kwargs
        )

    # ----------------------------------------------------------------- calls
    def __call__(
        self, speech: Audio, fs: Optional[int] = None, text: Optional[str] = None
    ) -> EmotionEnhanceResult:
        """One recording: (N,) samples, (N, C) channels-last (soundfile's layout)
        or (C, N) channels-first (torchaudio's).

        Args:
            speech: The waveform (float, or integer PCM).
            fs: Its sampling rate (default: the model's).
            text: Its transcript (models with a text frontend; without it the
                ASR model transcribes the recording).
        """
        return self.batch([speech], fs=fs, texts=None if text is None else [text])[0]

    @torch.no_grad()
    def batch(
        self,
        speech: Union[Audio, Sequence[Audio]],
        speech_lengths: Optional[Audio] = None,
        fs: Optional[int] = None,
        texts: Optional[Sequence[Optional[str]]] = None,
    ) -> List[EmotionEnhanceResult]:
        """Several recordings: a (B, N) padded batch with (B,) lengths, or a list
        of waveforms (as ``__call__`` takes). Results equal one-by-one calls.

        Args:
            speech: (B, N) padded waveforms, or a list of B waveforms.
            speech_lengths: (B,) valid samples per row of a padded batch.
            fs: Their sampling rate (default: the model's).
            texts: B transcripts (models with a text frontend); a None entry, or
                ``texts=None``, is transcribed by ``asr_model``. Each becomes (S,)
                token ids by the text frontend's tokenizer; a batch pads them
                (as training's collate function, with -1).
        """
        fs = self.fs if fs is None else fs
        if isinstance(fs, bool) or not isinstance(fs, (int, np.integer)) or fs <= 0:
            raise MeritInputError(f"fs must be a positive integer in Hz, got {fs!r}")
        if texts is not None and not self.reads_text:
            self.check_text_source(True)
        recordings = split_batch(speech, speech_lengths)
        wavs = [self._to_model_rate(w, int(fs), i) for i, w in enumerate(recordings)]
        texts = self._transcripts(texts, wavs)
        tokens = None if texts is None else [self.tokens(t) for t in texts]
        windows = [
            w
            for i, wav in enumerate(wavs)
            for w in plan_windows(i, len(wav), self.window, self.hop, self.shift)
        ]
        outs: List[Dict[str, Any]] = []
        for b in range(0, len(windows), self.batch_size):
            chunk = windows[b : b + self.batch_size]
            outs += self._run(
                [wavs[w.rec][w.start : w.end] for w in chunk],
                None if tokens is None else [tokens[w.rec] for w in chunk],
            )
        results = []
        for i, wav in enumerate(wavs):
            parts = [(w, o) for w, o in zip(windows, outs) if w.rec == i]
            res = self._assemble(parts, len(wav), len(recordings[i]), int(fs))
            res.silent = not bool(wav.abs().max() > 0)
            res.text = None if texts is None else texts[i]
            if res.silent:
                logger.warning(
                    f"recording {i} is digitally silent (all samples zero): its "
                    "predictions say nothing about it"
                )
            results.append(res)
        return results

    # --------------------------------------------------------------- helpers
    def _transcripts(
        self, texts: Optional[Sequence[Optional[str]]], wavs: List[torch.Tensor]
    ) -> Optional[List[str]]:
        """One transcript per recording: ``texts``, the ASR model's of the
        model-rate ``wavs`` for those without; None for a model without a text
        frontend."""
        if not self.reads_text:
            return None
        if texts is None:
            texts = [None] * len(wavs)
        if isinstance(texts, str) or len(texts) != len(wavs):
            got = "one string" if isinstance(texts, str) else f"{len(texts)}"
            raise MeritInputError(
                f"texts: expected one transcript per recording ({len(wavs)}), got "
                f"{got}"
            )
        texts, asr = list(texts), [i for i, t in enumerate(texts) if t is None]
        for i, text in enumerate(texts):
            if text is not None and not isinstance(text, str):
                raise MeritInputError(
                    f"recording {i}: its transcript is a {type(text).__name__}, "
                    "not a string"
                )
        if asr and self.asr_model is None:
            raise MeritInputError(f"recording {asr[0]}: no transcript: {NO_TRANSCRIPT}")
        if asr:
            for i, text in zip(asr, self._transcribe([wavs[i] for i in asr])):
                texts[i] = text
        for i, text in enumerate(texts):
            if not text.strip():
                by = f" (asr_model {self.asr_model} heard no word)" if i in asr else ""
                raise MeritInputError(f"recording {i}: its transcript is empty{by}")
        return texts

    def _transcribe(self, wavs: List[torch.Tensor]) -> List[str]:
        """The ASR model's transcripts of model-rate (N,) recordings."""
        if self._transcriber is None:
            from espnet2_merit.asr.transcriber import Transcriber

            self._transcriber = Transcriber(
                self.asr_model, device=self.device, **self.asr_conf
            )
        return self._transcriber.transcribe([w.numpy() for w in wavs], self.fs)

    def tokens(self, text: str) -> torch.Tensor:
        """(S,) token ids of a transcript, by the text frontend's tokenizer (the
        one the training preprocessor calls)."""
        return torch.as_tensor(self.text_frontend.tokenizer(text), dtype=torch.long)

    def _to_model_rate(self, wav: torch.Tensor, fs: int, index: int) -> torch.Tensor:
        if not torch.isfinite(wav).all():
            raise MeritInputError(f"recording {index}: contains NaN or Inf samples")
        if fs != self.fs:
            wav = torchaudio.functional.resample(wav, fs, self.fs)
        if len(wav) < self.min_samples:
            raise MeritInputError(
                f"recording {index}: {len(wav) / self.fs:.3f} s is shorter than one "
                f"model frame ({self.min_samples / self.fs:.3f} s)"
            )
        return wav

    def _run(
        self, chunks: List[torch.Tensor], tokens: Optional[List[torch.Tensor]] = None
    ) -> List[Dict[str, Any]]:
        """Model outputs for a list of waveforms at the model rate (one batch),
        with each one's (S,) transcript token ids for a text frontend."""
        lengths = torch.tensor([len(c) for c in chunks])
        speech = torch.zeros(len(chunks), int(lengths.max()))
        for i, c in enumerate(chunks):
            speech[i, : len(c)] = c
        speech, lengths = speech.to(self.device), lengths.to(self.device)
        text = {}
        if tokens is not None:  # padded as the training collate function pads
            text = dict(
                text=pad_list(tokens, TEXT_PAD).to(self.device),
                text_lengths=torch.tensor([len(t) for t in tokens]).to(self.device),
            )
        with torch.autocast(
            torch.device(self.device).type,
            dtype=self.dtype,
            enabled=self.dtype != torch.float32,
        ):
            fused, flens, preds = self.model.inference(
                speech, lengths, self.tasks, **text
            )
        outs = []
        for i, n in enumerate(flens.tolist()):
            out: Dict[str, Any] = {
                "routes": {
                    t: (e[i, :n].cpu().numpy(), g[i, :n].float().cpu().numpy())
                    for t, (e, g) in fused.routes.items()
                },
                "tasks": {},
            }
            for task, pred in preds.items():
                if hasattr(pred, "wav"):
                    value = pred.wav[i, : int(lengths[i])].float().cpu()
                else:
                    value = pred[i].float().cpu().numpy()
                if not bool(np.isfinite(np.asarray(value)).all()):
                    raise MeritInputError(
                        f"model {self.model_file}: task '{task}' gives NaN or Inf "
                        "outputs (a broken checkpoint?)"
                    )
                out["tasks"][task] = value
            outs.append(out)
        return outs

    def _assemble(
        self, parts: List[tuple], num: int, num_in: int, fs: int
    ) -> EmotionEnhanceResult:
        res = EmotionEnhanceResult(fs=fs)
        windows = [w for w, _ in parts]
        per_window: List[Dict[str, TaskResult]] = [{} for _ in parts]
        for task in self.tasks:
            head = self.model.heads[task]
            values = [o["tasks"][task] for _, o in parts]
            target = head.target
            names = _names(target)
            if target.kind == "waveform":
                wav = crossfade(windows, values, num)
                if fs != self.fs:
                    wav = torchaudio.functional.resample(wav, self.fs, fs)
                wav = torch.nn.functional.pad(wav, (0, max(num_in - len(wav), 0)))
                value = wav[:num_in].numpy()
            else:
                value = average(windows, values)
                for k, v in enumerate(values):
                    per_window[k][task] = TaskResult(target.kind, target.name, v, names)
            res.tasks[task] = TaskResult(target.kind, target.name, value, names)
        res.windows = [
            WindowResult(w.start / self.fs, w.end / self.fs, tasks)
            for w, tasks in zip(windows, per_window)
        ]
        for task in parts[0][1]["routes"] if parts else []:
            routes = [o["routes"][task] for _, o in parts]
            res.routes[task] = Routes(
                *central_frames(windows, routes, self.shift, self.fs)
            )
        return res


def _names(target) -> Optional[List[str]]:
    if isinstance(target, LabelTarget):
        return list(target.classes)
    if isinstance(target, VectorTarget):
        return list(target.names)
    return None


def split_batch(speech, speech_lengths) -> List[torch.Tensor]:
    """A list of (N,) float32 mono waveforms from the inputs ``batch`` takes."""
    if isinstance(speech, (list, tuple)):
        if speech_lengths is not None:
            raise MeritInputError("speech_lengths is for a padded (B, N) batch")
        return [as_mono(s, i) for i, s in enumerate(speech)]
    speech = as_float(speech, "speech")
    if speech.dim() != 2 or speech_lengths is None:
        raise MeritInputError(
            "batch() takes a (B, N) array with speech_lengths, or a list of "
            f"waveforms; got shape {tuple(speech.shape)}"
        )
    lengths = torch.as_tensor(speech_lengths).tolist()
    if (
        len(lengths) != speech.size(0)
        or max(lengths) > speech.size(1)
        or min(lengths) < 1
    ):
        raise MeritInputError(
            f"speech_lengths {lengths} do not fit speech {tuple(speech.shape)} "
            "(one positive length per row, at most its width)"
        )
    return [s[:n] for s, n in zip(speech, lengths)]


def as_float(wav, what: str) -> torch.Tensor:
    """Float32 samples; integer PCM scaled as soundfile reads it."""
    array = wav.numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
    if array.dtype.kind in "iu":
        if array.dtype == np.uint8:  # 8-bit WAV is unsigned, centred on 128
            array = (array.astype(np.float32) - 128) / 128
        else:
            array = array.astype(np.float32) / float(
                2 ** (8 * array.dtype.itemsize - 1)
            )
    elif array.dtype.kind != "f":
        raise MeritInputError(f"{what}: samples of type {array.dtype} are not audio")
    return torch.as_tensor(np.ascontiguousarray(array, dtype=np.float32))


def as_mono(wav, index: int) -> torch.Tensor:
    """(N,), (N, C) or (C, N) -> (N,) by averaging the channels."""
    wav = as_float(wav, f"recording {index}")
    if wav.dim() == 2:
        small = int(np.argmin(wav.shape))
        if wav.shape[small] > MAX_CHANNELS:
            raise MeritInputError(
                f"recording {index}: shape {tuple(wav.shape)} is neither (N, channels) "
                f"nor (channels, N) with at most {MAX_CHANNELS} channels"
            )
        wav = wav.mean(small)
    if wav.dim() != 1:
        raise MeritInputError(
            f"recording {index}: expected (N,), (N, channels) or (channels, N), "
            f"got {tuple(wav.shape)}"
        )
    return wav
