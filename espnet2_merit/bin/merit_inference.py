#!/usr/bin/env python3
"""Use a trained MERIT model: emotion, attributes, enhanced speech and routing.

Python:
    >>> s2e = Speech2EmotionEnhance.from_pretrained("exp/packed/model.zip")
    >>> result = s2e(waveform, fs=44100)
    >>> result.label, result.probs, result.enhanced, result.routes["ser"].experts

Recipe (stage 9), one shard of a data dir per job:
    python -m espnet2_merit.bin.merit_inference --train_config exp/x/config.yaml \
        --model_file exp/x/valid.acc.best.pth --output_dir exp/x/decode/test1/output.1 \
        --data_path_and_name_and_type dump/raw/test1/wav.scp,speech,sound \
        --key_file exp/x/decode/test1/keys.1
"""

import argparse
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile
import torch
import torchaudio
import yaml
from espnet2.fileio.sound_scp import SoundScpReader
from espnet2.utils import config_argparse
from espnet2.utils.types import str2bool, str2triple_str, str_or_none
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.espnet_model import ESPnetMeritModel
from espnet2_merit.tasks.merit import MeritTask
from espnet2_merit.utils.cli import entry_point

logger = logging.getLogger(__name__)
Audio = Union[np.ndarray, torch.Tensor]


@typechecked
def load_model(
    train_config: Union[str, Path],
    model_file: Union[str, Path, None] = None,
    device: str = "cpu",
) -> Tuple[ESPnetMeritModel, argparse.Namespace]:
    """Build the model of a training ``config.yaml`` and load its weights strictly.

    ESPnet's ``build_model_from_file`` ignores missing keys; here a checkpoint that
    lacks or adds parameters is an error naming them. Weights load with
    ``weights_only=True`` (no pickled code runs).
    """
    train_config = Path(train_config)
    if not train_config.is_file():
        raise MeritInputError(f"train_config: no such file {train_config}")
    with train_config.open(encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    if not isinstance(conf, dict) or "fusion" not in conf:
        raise MeritInputError(
            f"{train_config}: not a MERIT training config (no 'fusion' entry)"
        )
    args = argparse.Namespace(**conf)
    model = MeritTask.build_model(args)
    if model_file is not None:
        if not Path(model_file).is_file():
            raise MeritInputError(f"model_file: no such file {model_file}")
        state = torch.load(model_file, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise MeritInputError(f"{model_file}: expected a state dict")
        expected = model.state_dict().keys()
        missing = sorted(set(expected) - set(state))
        extra = sorted(set(state) - set(expected))
        if missing or extra:
            raise MeritInputError(
                f"{model_file} does not match {train_config}: "
                f"missing parameters {_short(missing)}, "
                f"unexpected parameters {_short(extra)}"
            )
        model.load_state_dict(state, strict=True)
    return model.to(device).eval(), args


def _short(names: List[str], n: int = 8) -> str:
    more = f" (+{len(names) - n} more)" if len(names) > n else ""
    return str(names[:n]) + more


@dataclass
class Routes:
    """One task's per-frame routing.

    Attributes:
        experts: (T, k) chosen experts per frame.
        gates: (T, k) their (renormalised) gate probabilities.
        times: (T,) start time of each frame in seconds.
    """

    experts: np.ndarray
    gates: np.ndarray
    times: np.ndarray

    def usage(self, num_experts: int) -> np.ndarray:
        """(E,) share of frames routed to each expert (top-1 choice)."""
        counts = np.bincount(self.experts[:, 0], minlength=num_experts)
        return counts / max(len(self.experts), 1)


@dataclass
class WindowEmotion:
    """SER output of one analysis window of a long recording."""

    start: float
    end: float
    probs: Optional[np.ndarray]
    label: Optional[str]
    attributes: Optional[Dict[str, float]]


@dataclass
class EmotionEnhanceResult:
    """Everything the model says about one recording.

    Attributes:
        fs: Sampling rate of the input (and of ``enhanced``).
        emotion_list: Class names, the order of ``probs``.
        probs: (C,) class probabilities (None without a classifier).
        label: Most probable class.
        attributes: Attribute name -> value (attribute regressors).
        enhanced: (N,) enhanced waveform at ``fs`` (None without an SE head).
        routes: Task -> per-frame routing (mixture-of-experts fusions only).
        windows: Per-window SER outputs (one window for short recordings).
    """

    fs: int
    emotion_list: Optional[List[str]] = None
    probs: Optional[np.ndarray] = None
    label: Optional[str] = None
    attributes: Optional[Dict[str, float]] = None
    enhanced: Optional[np.ndarray] = None
    routes: Dict[str, Routes] = field(default_factory=dict)
    windows: List[WindowEmotion] = field(default_factory=list)

    def to_dict(self, frames: bool = False) -> Dict[str, Any]:
        """JSON-friendly summary (per-frame routes only with ``frames``)."""
        out: Dict[str, Any] = {"label": self.label}
        if self.probs is not None:
            out["confidence"] = float(self.probs.max())
            out["probs"] = dict(zip(self.emotion_list, map(float, self.probs)))
        if self.attributes is not None:
            out["attributes"] = self.attributes
        out["windows"] = [
            {
                "start": w.start,
                "end": w.end,
                "label": w.label,
                **({"attributes": w.attributes} if w.attributes else {}),
            }
            for w in self.windows
        ]
        if frames:
            out["routes"] = {
                t: {
                    "times": r.times.round(4).tolist(),
                    "experts": r.experts.tolist(),
                    "gates": r.gates.round(4).tolist(),
                }
                for t, r in self.routes.items()
            }
        return out


@dataclass
class _Window:
    rec: int  # index of the recording
    start: int  # samples at the model rate
    end: int
    own_start: int  # the part of the recording this window speaks for
    own_end: int


class Speech2EmotionEnhance:
    """Speech emotion recognition and enhancement with a trained MERIT model.

    Input audio may have any sampling rate (resampled to the model's and back for
    the enhanced output). Multi-channel input is averaged to mono, the single
    channel the model was trained on. Recordings longer than ``window_sec`` are
    cut into windows overlapping by ``overlap_sec``: the utterance emotion is the
    average of the windows' outputs weighted by the duration each window speaks for
    (up to the middle of its overlaps), the enhanced waveform is cross-faded over
    the overlaps, and each routed frame comes from the window it is most central
    in. Peak memory then depends on ``window_sec`` and ``batch_size`` only.

    Example:
        >>> s2e = Speech2EmotionEnhance("exp/x/config.yaml", "exp/x/valid.acc.best.pth")
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
        overlap_sec: float = 4.0,
        enhance: bool = True,
    ):
        """Load a model.

        Args:
            train_config: The training run's ``config.yaml``.
            model_file: Its weights (``*.pth``); None keeps the initialisation.
            device: "cpu", "cuda", "cuda:1", ...
            dtype: Compute dtype: "float32", or "bfloat16"/"float16" (autocast).
            batch_size: Windows processed together.
            window_sec: Longest stretch of audio the model sees at once.
            overlap_sec: Overlap between consecutive windows.
            enhance: Also synthesise the enhanced waveform (SE head).
        """
        if dtype not in ("float32", "bfloat16", "float16"):
            raise MeritInputError(f"dtype: '{dtype}' is not float32/bfloat16/float16")
        if batch_size < 1:
            raise MeritInputError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= overlap_sec < window_sec:
            raise MeritInputError(
                f"need 0 <= overlap_sec < window_sec, got {overlap_sec}, {window_sec}"
            )
        self.model, self.args = load_model(train_config, model_file, device)
        self.device, self.dtype = device, getattr(torch, dtype)
        self.batch_size, self.enhance = batch_size, enhance
        self.fs = int(self.args.fs)
        frontend = self.model.frontend
        self.shift, self.min_samples = frontend.frame_shift(), frontend.min_samples()
        self.window = max(int(window_sec * self.fs), self.min_samples)
        # Whole frames between window starts, so all windows share one frame grid.
        hop = int((window_sec - overlap_sec) * self.fs) // self.shift * self.shift
        self.hop = max(hop, self.shift)
        self.emotion_list = self.model.emotion_list
        self.attribute_list = list(getattr(self.args, "attribute_list", []))

    @staticmethod
    def from_pretrained(model_tag: str, **kwargs) -> "Speech2EmotionEnhance":
        """Load a packed model: a local zip, a URL or a Hugging Face repo name
        (unpacked by espnet_model_zoo's ``ModelDownloader``)."""
        from espnet_model_zoo.downloader import ModelDownloader

        cachedir = kwargs.pop("cachedir", None)
        url = "://" in model_tag
        archive = Path(model_tag).suffix in (".zip", ".tar", ".gz", ".tgz")
        if not (url or Path(model_tag).is_file()) and (archive or "/" not in model_tag):
            raise MeritInputError(
                f"model '{model_tag}': no such file, and not a URL or a Hugging Face "
                "repo name (owner/name)"
            )
        files = ModelDownloader(cachedir).download_and_unpack(model_tag)
        return Speech2EmotionEnhance(**files, **kwargs)

    # ----------------------------------------------------------------- calls
    def __call__(self, speech: Audio, fs: Optional[int] = None) -> EmotionEnhanceResult:
        """One recording: (N,) samples or (N, C) channels-last (soundfile's layout).

        Args:
            speech: The waveform.
            fs: Its sampling rate (default: the model's).
        """
        return self.batch([speech], fs=fs)[0]

    @torch.no_grad()
    def batch(
        self,
        speech: Union[Audio, Sequence[Audio]],
        speech_lengths: Optional[Audio] = None,
        fs: Optional[int] = None,
    ) -> List[EmotionEnhanceResult]:
        """Several recordings: a (B, N) padded batch with (B,) lengths, or a list
        of (N,) / (N, C) waveforms. Results equal one-by-one calls."""
        recordings = self._split(speech, speech_lengths)
        fs = int(fs or self.fs)
        wavs = [self._to_model_rate(w, fs, i) for i, w in enumerate(recordings)]
        windows = [w for i, wav in enumerate(wavs) for w in self._windows(i, len(wav))]
        outs: List[Dict[str, Any]] = []
        for b in range(0, len(windows), self.batch_size):
            chunk = windows[b : b + self.batch_size]
            outs += self._run([wavs[w.rec][w.start : w.end] for w in chunk])
        return [
            self._assemble(
                [(w, o) for w, o in zip(windows, outs) if w.rec == i],
                len(wavs[i]),
                len(recordings[i]),
                fs,
            )
            for i in range(len(wavs))
        ]

    # --------------------------------------------------------------- helpers
    @staticmethod
    def _split(speech, speech_lengths) -> List[torch.Tensor]:
        if isinstance(speech, (list, tuple)):
            if speech_lengths is not None:
                raise MeritInputError("speech_lengths is for a padded (B, N) batch")
            return [torch.as_tensor(np.asarray(s, dtype=np.float32)) for s in speech]
        speech = torch.as_tensor(speech, dtype=torch.float32)
        if speech.dim() != 2 or speech_lengths is None:
            raise MeritInputError(
                "batch() takes a (B, N) array with speech_lengths, or a list of "
                f"waveforms; got shape {tuple(speech.shape)}"
            )
        lengths = torch.as_tensor(speech_lengths).tolist()
        if len(lengths) != speech.size(0) or max(lengths) > speech.size(1):
            raise MeritInputError(
                f"speech_lengths {lengths} do not fit speech {tuple(speech.shape)}"
            )
        return [s[:n] for s, n in zip(speech, lengths)]

    def _to_model_rate(self, wav: torch.Tensor, fs: int, index: int) -> torch.Tensor:
        if wav.dim() == 2:  # (N, C): average the channels
            wav = wav.mean(-1)
        if wav.dim() != 1:
            raise MeritInputError(
                f"recording {index}: expected (N,) or (N, channels), "
                f"got {tuple(wav.shape)}"
            )
        if fs != self.fs:
            wav = torchaudio.functional.resample(wav, fs, self.fs)
        if len(wav) < self.min_samples:
            raise MeritInputError(
                f"recording {index}: {len(wav) / self.fs:.3f} s is shorter than one "
                f"model frame ({self.min_samples / self.fs:.3f} s)"
            )
        if not torch.isfinite(wav).all():
            raise MeritInputError(f"recording {index}: contains NaN or Inf samples")
        return wav

    def _windows(self, rec: int, num: int) -> List[_Window]:
        if num <= self.window:
            return [_Window(rec, 0, num, 0, num)]
        # Starts on the frame grid; the last window runs to the end (< 1 frame
        # longer than the others) so every frame time is a multiple of the shift.
        starts = list(range(0, num - self.window, self.hop))
        last = (num - self.window) // self.shift * self.shift
        if last > starts[-1]:
            starts.append(last)
        ends = [s + self.window for s in starts[:-1]] + [num]
        # Each window speaks for its samples up to the middle of its overlaps.
        cuts = [0] + [(s + e) // 2 for s, e in zip(starts[1:], ends[:-1])] + [num]
        return [
            _Window(rec, s, e, cuts[i], cuts[i + 1])
            for i, (s, e) in enumerate(zip(starts, ends))
        ]

    def _run(self, chunks: List[torch.Tensor]) -> List[Dict[str, Any]]:
        """Model outputs for a list of waveforms at the model rate (one batch)."""
        lengths = torch.tensor([len(c) for c in chunks])
        speech = torch.zeros(len(chunks), int(lengths.max()))
        for i, c in enumerate(chunks):
            speech[i, : len(c)] = c
        speech, lengths = speech.to(self.device), lengths.to(self.device)
        model = self.model
        with torch.autocast(
            torch.device(self.device).type,
            dtype=self.dtype,
            enabled=self.dtype != torch.float32,
        ):
            fused, flens, ser, se = model.inference(speech, lengths, self.enhance)
        outs = []
        for i, n in enumerate(flens.tolist()):
            out: Dict[str, Any] = {
                "routes": {
                    t: (e[i, :n].cpu().numpy(), g[i, :n].float().cpu().numpy())
                    for t, (e, g) in fused.routes.items()
                }
            }
            if ser is not None:
                out["ser"] = ser[i].cpu().numpy()
            if se is not None:
                out["wav"] = se.wav[i, : int(lengths[i])].float().cpu()
            outs.append(out)
        return outs

    def _assemble(
        self, parts: List[Tuple[_Window, Dict]], num: int, num_in: int, fs: int
    ) -> EmotionEnhanceResult:
        res = EmotionEnhanceResult(fs=fs, emotion_list=self.emotion_list)
        classifier = self.model.ser_head is not None and (
            self.model.ser_head.target == "emotion"
        )
        # SER: windows weighted by the duration they speak for.
        if self.model.ser_head is not None:
            weights = np.array([w.own_end - w.own_start for w, _ in parts], float)
            mean = np.average(np.stack([o["ser"] for _, o in parts]), 0, weights)
            for w, o in parts:
                res.windows.append(
                    WindowEmotion(
                        start=w.start / self.fs,
                        end=w.end / self.fs,
                        **self._ser_fields(o["ser"], classifier),
                    )
                )
            fields = self._ser_fields(mean, classifier)
            res.probs, res.label = fields["probs"], fields["label"]
            res.attributes = fields["attributes"]
        # SE: cross-fade the windows' outputs over their overlaps.
        if parts and "wav" in parts[0][1]:
            out, total = torch.zeros(num), torch.zeros(num)
            for w, o in parts:
                fade = torch.ones(w.end - w.start)
                n_in, n_out = w.own_start - w.start, w.end - w.own_end
                if n_in:
                    fade[: 2 * n_in] = torch.linspace(0, 1, 2 * n_in + 2)[1:-1]
                if n_out:
                    fade[-2 * n_out :] = torch.linspace(1, 0, 2 * n_out + 2)[1:-1]
                out[w.start : w.end] += fade * o["wav"]
                total[w.start : w.end] += fade
            wav = out / total
            if fs != self.fs:
                wav = torchaudio.functional.resample(wav, self.fs, fs)
            wav = torch.nn.functional.pad(wav, (0, max(num_in - len(wav), 0)))
            res.enhanced = wav[:num_in].numpy()
        # Routing: each frame from the window it is most central in.
        for task in parts[0][1]["routes"] if parts else []:
            experts, gates, times = [], [], []
            for w, o in parts:
                e, g = o["routes"][task]
                starts = w.start + np.arange(len(e)) * self.shift
                keep = (starts >= w.own_start) & (starts < w.own_end)
                experts.append(e[keep]), gates.append(g[keep])
                times.append(starts[keep] / self.fs)
            res.routes[task] = Routes(
                np.concatenate(experts), np.concatenate(gates), np.concatenate(times)
            )
        return res

    def _ser_fields(self, values: np.ndarray, classifier: bool) -> Dict[str, Any]:
        if classifier:
            probs = values.astype(np.float32)
            label = (
                self.emotion_list[int(probs.argmax())] if self.emotion_list else None
            )
            return {"probs": probs, "label": label, "attributes": None}
        attrs = dict(zip(self.attribute_list, map(float, values)))
        return {"probs": None, "label": None, "attributes": attrs}


# ------------------------------------------------------------- recipe entry point
def get_parser() -> config_argparse.ArgumentParser:
    parser = config_argparse.ArgumentParser(
        description="MERIT inference over a data dir: emotion posteriors and labels, "
        "attributes, enhanced wavs and routing statistics",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--log_level",
        type=lambda x: x.upper(),
        default="INFO",
        choices=("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET"),
    )
    parser.add_argument("--output_dir", type=str, required=True)
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batch_size", type=int, default=1)
    group = parser.add_argument_group("Input data related")
    group.add_argument(
        "--data_path_and_name_and_type",
        type=str2triple_str,
        required=True,
        action="append",
        help="The noisy speech: <wav.scp>,speech,sound",
    )
    group.add_argument(
        "--key_file", type=str_or_none, help="Only these utterances (one shard)"
    )
    group = parser.add_argument_group("The model")
    group.add_argument("--train_config", type=str_or_none)
    group.add_argument("--model_file", type=str_or_none)
    group.add_argument(
        "--model_tag", type=str_or_none, help="Packed model: zip, URL or HF repo"
    )
    group = parser.add_argument_group("Inference related")
    group.add_argument("--enhance", type=str2bool, default=True)
    group.add_argument("--window_sec", type=float, default=20.0)
    group.add_argument("--overlap_sec", type=float, default=4.0)
    return parser


class _AtomicText:
    """Kaldi-style text outputs written to ``*.tmp`` and renamed when complete, so
    an interrupted job never leaves a file that looks finished."""

    def __init__(self, directory: Path):
        self.directory, self.files = directory, {}

    def write(self, name: str, key: str, value: str):
        if name not in self.files:
            path = self.directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            self.files[name] = open(f"{path}.tmp", "w", encoding="utf-8")
        self.files[name].write(f"{key} {value}\n")

    def commit(self):
        for name, f in self.files.items():
            f.close()
            os.replace(f.name, self.directory / name)


def inference(args: argparse.Namespace):
    """Run the model over one shard of a data dir."""
    (path, name, kind), *rest = args.data_path_and_name_and_type
    if rest or name != "speech" or kind != "sound":
        raise MeritInputError(
            "--data_path_and_name_and_type: expected one '<wav.scp>,speech,sound'"
        )
    device = "cuda" if args.ngpu > 0 else "cpu"
    kwargs = dict(
        device=device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        window_sec=args.window_sec,
        overlap_sec=args.overlap_sec,
        enhance=args.enhance,
    )
    if args.model_tag is not None:
        s2e = Speech2EmotionEnhance.from_pretrained(args.model_tag, **kwargs)
    elif args.train_config is not None:
        s2e = Speech2EmotionEnhance(args.train_config, args.model_file, **kwargs)
    else:
        raise MeritInputError("give --model_tag or --train_config/--model_file")

    reader = SoundScpReader(path, dtype="float32", always_2d=True)
    keys = list(reader.keys())
    if args.key_file is not None:
        lines = Path(args.key_file).read_text(encoding="utf-8").splitlines()
        wanted = [line.split()[0] for line in lines if line.strip()]
        known = set(keys)  # the reader's `in` would try to read the audio
        unknown = [k for k in wanted if k not in known]
        if unknown:
            raise MeritInputError(
                f"{args.key_file}: {len(unknown)} keys not in {path}, "
                f"e.g. {unknown[:3]}"
            )
        keys = wanted

    out_dir = Path(args.output_dir)
    wav_dir = out_dir / "wavs"
    text = _AtomicText(out_dir)
    for start in range(0, len(keys), args.batch_size):
        batch_keys = keys[start : start + args.batch_size]
        audio, rates = [], []
        for key in batch_keys:
            try:
                rate, wav = reader[key]
            except Exception as e:  # soundfile's errors do not name the scp line
                raise MeritInputError(f"{path}: cannot read '{key}': {e}") from e
            audio.append(wav)
            rates.append(rate)
        if len(set(rates)) > 1:  # one rate per call: split mixed-rate batches
            results = [s2e(w, fs=r) for w, r in zip(audio, rates)]
        else:
            results = s2e.batch(audio, fs=rates[0])
        for key, res in zip(batch_keys, results):
            _write(text, wav_dir, key, res, s2e)
        logger.info(f"{start + len(batch_keys)}/{len(keys)} utterances")
    if s2e.emotion_list:
        (out_dir / "emotion_list").write_text("\n".join(s2e.emotion_list) + "\n")
    text.commit()


def _write(text: _AtomicText, wav_dir: Path, key: str, res, s2e):
    if res.probs is not None:
        text.write("emotion", key, res.label)
        text.write("posteriors", key, " ".join(f"{p:.6f}" for p in res.probs))
    if res.attributes is not None:
        values = " ".join(f"{v:.4f}" for v in res.attributes.values())
        text.write("emotion_attr", key, values)
    if res.enhanced is not None:
        wav_dir.mkdir(parents=True, exist_ok=True)
        soundfile.write(wav_dir / f"{key}.wav", res.enhanced, res.fs)
        text.write("spk1.scp", key, str((wav_dir / f"{key}.wav").resolve()))
    num_experts = getattr(s2e.model.fusion, "num_experts", 0)
    for task, r in res.routes.items():
        usage = r.usage(num_experts)
        text.write(f"routing/{task}_usage", key, " ".join(f"{u:.4f}" for u in usage))
        text.write(f"routing/{task}_gate", key, f"{float(r.gates[:, 0].mean()):.4f}")
        text.write(f"routing/{task}_experts", key, " ".join(map(str, r.experts[:, 0])))


def main(cmd=None):
    parser = get_parser()
    args = parser.parse_args(cmd)
    with entry_point("merit_inference", args.log_level):
        inference(args)


if __name__ == "__main__":
    main()
