"""The ``merit`` commands: emotion, enhancement, routing plots and export for
one's own audio files (``espnet2_merit.bin.merit_cli`` parses their options).

Standard output carries results only (a table, JSON lines or CSV); progress,
warnings and errors go to standard error. A file that cannot be read or
processed is reported by its path and the others go on; the command then exits
non-zero.
"""

import csv
import io
import json
import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import soundfile

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.datadir import read_kaldi

logger = logging.getLogger(__name__)


def load(args, enhance: bool):
    """The model of ``--model`` or ``--train_config``/``--model_file``."""
    from espnet2_merit.inference.speech2emotion import Speech2EmotionEnhance

    kwargs = dict(
        device=args.device,
        window_sec=args.window_sec,
        overlap_sec=args.overlap_sec,
        enhance=enhance,
        batch_size=getattr(args, "batch_size", 1),
        asr_model=getattr(args, "asr_model", None),
    )
    if args.model:
        return Speech2EmotionEnhance.from_pretrained(args.model, **kwargs)
    if args.train_config:
        if not args.model_file:
            raise MeritInputError(
                "--train_config needs --model_file (the trained weights)"
            )
        return Speech2EmotionEnhance(args.train_config, args.model_file, **kwargs)
    raise MeritInputError("give --model (zip, URL, HF repo) or --train_config")


def read_audio_file(path: str) -> Tuple[np.ndarray, int]:
    """(N, C) float32 samples and the rate of an audio file, or an error naming
    it."""
    if not Path(path).is_file():
        raise MeritInputError(f"{path}: no such file")
    try:
        wav, fs = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile's message does not say which file
        raise MeritInputError(f"{path}: not a readable audio file ({e})") from None
    if len(wav) == 0:
        raise MeritInputError(f"{path}: the file has no samples")
    return wav, fs


def _named(path: str, e: MeritInputError) -> str:
    """The library's message about "recording 0" told of the file instead."""
    text = str(e)
    return (
        text.replace("recording 0", path)
        if "recording 0" in text
        else f"{path}: {text}"
    )


def transcripts(args) -> Optional[Dict[str, Optional[str]]]:
    """Audio file -> its transcript from ``--text`` (one file) or ``--text_file``
    (Kaldi ``<key> <words>`` lines, the key being the file's path as given or its
    name without the extension); None without either. A file without a line maps to None (``--asr_model``
    transcribes it), and is an error without ``--asr_model``."""
    files = list(args.files) if hasattr(args, "files") else [args.file]
    text, text_file = getattr(args, "text", None), getattr(args, "text_file", None)
    if text is not None and text_file is not None:
        raise MeritInputError("give --text or --text_file, not both")
    if text is not None:
        if len(files) != 1:
            raise MeritInputError(
                f"--text is the transcript of one file ({len(files)} given): use "
                "--text_file with '<key> <words>' lines"
            )
        return {files[0]: text}
    if text_file is None:
        return None
    path = Path(text_file)
    if not path.is_file():
        raise MeritInputError(f"--text_file {text_file}: no such file")
    keyed = read_kaldi(path)
    stems = [Path(f).stem for f in files if f not in keyed]
    twice = sorted({s for s in stems if stems.count(s) > 1 and s in keyed})
    if twice:
        raise MeritInputError(
            f"--text_file {text_file}: key '{twice[0]}' fits several files; key "
            "them by their paths"
        )
    out: Dict[str, Optional[str]] = {}
    for f in files:
        keys = [k for k in (f, Path(f).stem) if k in keyed]
        if keys:
            out[f] = keyed[keys[0]]
        elif getattr(args, "asr_model", None) is not None:
            out[f] = None  # transcribed by the ASR model
        else:
            raise MeritInputError(
                f"--text_file {text_file}: no line for {f} (key '{Path(f).stem}' "
                f"or '{f}'); or give --asr_model to transcribe it"
            )
    return out


def _one_transcript(args, s2e) -> Optional[str]:
    """``--text``/``--text_file``'s transcript of ``args.file`` (None: none, or
    the ASR model's), checked against the model."""
    texts = transcripts(args)
    s2e.check_text_source(texts is not None)
    return None if texts is None else texts[args.file]


def predict(args) -> Tuple[str, bool]:
    """Utterance-level outputs of every file; returns (output, all good)."""
    from tqdm import tqdm

    texts = transcripts(args)
    s2e = load(args, enhance=False)
    s2e.check_text_source(texts is not None)
    text = (lambda p: None) if texts is None else texts.get
    rows: List[dict] = []
    files = list(args.files)
    bar = tqdm(total=len(files), disable=len(files) < 2, file=sys.stderr, unit="file")
    for start in range(0, len(files), s2e.batch_size):
        paths = files[start : start + s2e.batch_size]
        audio: Dict[str, tuple] = {}
        for p in paths:
            try:
                audio[p] = read_audio_file(p)
            except MeritInputError as e:
                rows.append({"file": p, "error": str(e)})
        rates = {fs for _, fs in audio.values()}
        results = {}
        if len(rates) == 1:
            try:
                batch = s2e.batch(
                    [w for w, _ in audio.values()],
                    fs=rates.pop(),
                    texts=None if texts is None else [text(p) for p in audio],
                )
                results = dict(zip(audio, batch))
            except MeritInputError:
                results = {}  # one file is bad: find it below, one by one
        for p, (wav, fs) in audio.items():
            if p not in results:
                try:
                    results[p] = s2e(wav, fs=fs, text=text(p))
                except MeritInputError as e:
                    rows.append({"file": p, "error": _named(p, e)})
                    continue
            rows.append({"file": p, **results[p].to_dict()})
        bar.update(len(paths))
    bar.close()
    order = {p: i for i, p in enumerate(files)}
    rows.sort(key=lambda r: order[r["file"]])
    for r in rows:
        if "error" in r:
            print(f"merit predict: error: {r['error']}", file=sys.stderr)
        elif r.get("silent"):
            print(
                f"merit predict: warning: {r['file']}: digitally silent",
                file=sys.stderr,
            )
    how = "json" if args.json else "csv" if args.csv else "table"
    return format_rows(rows, how), not any("error" in r for r in rows)


def format_rows(rows: List[dict], how: str) -> str:
    """Rows as JSON lines, CSV with a header, or an aligned table."""
    if how == "json":
        return "\n".join(json.dumps(r) for r in rows)
    attrs = sorted({k for r in rows for k in (r.get("attributes") or {})})
    others = sorted(
        {
            t
            for r in rows
            for t, v in (r.get("tasks") or {}).items()
            if "label" in v and v["label"] != r.get("label")
        }
    )
    columns = ["file", "emotion", "confidence", *attrs, *others, "silent", "error"]
    flat = []
    for r in rows:
        tasks = r.get("tasks") or {}
        flat.append(
            {
                "file": r["file"],
                "emotion": r.get("label") or "",
                "confidence": f"{r['confidence']:.3f}" if "confidence" in r else "",
                **{a: f"{r['attributes'][a]:.3f}" for a in r.get("attributes") or {}},
                **{t: tasks[t]["label"] for t in others if t in tasks},
                "silent": "yes" if r.get("silent") else "",
                "error": r.get("error", ""),
            }
        )
    columns = [c for c in columns if c == "file" or any(f.get(c) for f in flat)]
    if how == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf, columns, lineterminator="\n", extrasaction="ignore"
        )
        writer.writeheader()
        writer.writerows(flat)
        return buf.getvalue().rstrip("\n")
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in flat)) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    for r in flat:
        lines.append(
            "  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(columns, widths))
        )
    return "\n".join(line.rstrip() for line in lines)


def _output_file(path: str, suffix: Optional[str] = None) -> Path:
    out = Path(path)
    if out.is_dir() or path.endswith("/"):
        raise MeritInputError(f"-o {path}: is a directory; give a file name")
    if suffix and out.suffix.lower() != suffix:
        raise MeritInputError(f"-o {path}: expected a {suffix} file name")
    return out


def enhance(args) -> Tuple[str, bool]:
    output = _output_file(args.output)
    fmt = soundfile.available_formats()
    if output.suffix[1:].upper() not in fmt:
        raise MeritInputError(
            f"-o {args.output}: '{output.suffix}' is not an audio format soundfile "
            "writes (e.g. .wav, .flac)"
        )
    s2e = load(args, enhance=True)
    if all(h.target_kind != "waveform" for h in s2e.model.heads.values()):
        raise MeritInputError("this model has no enhancement task: it cannot enhance")
    text = _one_transcript(args, s2e)
    wav, fs = read_audio_file(args.file)
    try:
        res = s2e(wav, fs=fs, text=text)
    except MeritInputError as e:
        raise MeritInputError(_named(args.file, e)) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(output, res.enhanced, fs)
    return f"wrote {output} ({len(res.enhanced) / fs:.2f} s at {fs} Hz)", True


def routes(args) -> Tuple[str, bool]:
    from espnet2_merit.scoring.plots import plot_routes

    output = _output_file(args.output, ".png")
    s2e = load(args, enhance=False)
    text = _one_transcript(args, s2e)
    wav, fs = read_audio_file(args.file)
    try:
        res = s2e(wav, fs=fs, text=text)
    except MeritInputError as e:
        raise MeritInputError(_named(args.file, e)) from None
    if not res.routes:
        raise MeritInputError(
            f"this model's fusion ({type(s2e.model.fusion).__name__}) does not route"
        )
    plot_routes(wav.mean(-1), fs, res, s2e.model.fusion.num_experts, output)
    return f"wrote {output}", True


def export(args) -> Tuple[str, bool]:
    from espnet2_merit.inference.onnx_export import export_onnx

    output = _output_file(args.onnx, ".onnx")
    s2e = load(args, enhance=False)
    return export_onnx(s2e, str(output), seconds=args.seconds, task=args.task), True


COMMANDS = dict(predict=predict, enhance=enhance, routes=routes, export=export)
