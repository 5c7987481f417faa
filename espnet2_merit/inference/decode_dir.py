"""Decoding one shard of a data directory (recipe stage 9).

Writes, per task, the files its target declares (``Target.render``: e.g.
``emotion`` + ``emotion_posteriors`` for a label task, ``emotion_attr`` for a
vector task; ``wavs/<task>/<utt>.wav`` + ``spk1.scp`` for enhancement), the
routing statistics of every routed task
(``routing/<task>_{usage,gate,experts,expert_count}``: per utterance the expert
shares, mean first gate, first-choice expert and number of experts of each frame)
and ``outputs.json``, the manifest: every task's target (name, kind, file,
classes or value names) and every text file written. A model with a text
frontend reads each utterance's transcript from a Kaldi ``text`` file (or its ASR
model's) and writes the transcript it read to ``text``. The stage script merges the
files the manifest lists; scoring reads the targets from it. Text files appear
only when complete (written to ``*.tmp`` and renamed), the manifest last.

An utterance that cannot be read or decoded is recorded in ``failed`` (id and
reason) and the others go on; the job then fails, naming them.
"""

import json
import logging
import os
from pathlib import Path
from typing import Dict, List, Optional

import soundfile
from espnet2.fileio.sound_scp import SoundScpReader

from espnet2_merit.errors import MeritInputError
from espnet2_merit.inference.results import EmotionEnhanceResult
from espnet2_merit.inference.speech2emotion import Speech2EmotionEnhance
from espnet2_merit.utils.datadir import MANIFEST, atomic_write_text, read_kaldi

logger = logging.getLogger(__name__)


class AtomicTextFiles:
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

    def commit(self) -> List[str]:
        """Rename every file into place; returns their names."""
        for name, f in self.files.items():
            f.close()
            os.replace(f.name, self.directory / name)
        return sorted(self.files)


def write_result(
    text: AtomicTextFiles, out_dir: Path, key: str, res: EmotionEnhanceResult, s2e
) -> None:
    """One utterance's outputs, in each task's file format."""
    for task, result in res.tasks.items():
        target = s2e.model.heads[task].target
        if result.kind == "waveform":
            path = out_dir / "wavs" / task / f"{key}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            soundfile.write(tmp, result.value, res.fs, format="WAV")
            os.replace(tmp, path)
            text.write(target.file_name, key, str(path.resolve()))
        else:
            for name, line in target.render(result.value).items():
                text.write(name, key, line)
    if res.text is not None:  # the transcript read (given or the ASR model's)
        text.write("text", key, " ".join(res.text.split()))
    num_experts = getattr(s2e.model.fusion, "num_experts", 0)
    for task, r in res.routes.items():
        usage = " ".join(f"{u:.4f}" for u in r.usage(num_experts))
        text.write(f"routing/{task}_usage", key, usage)
        text.write(f"routing/{task}_gate", key, f"{float(r.gates[:, 0].mean()):.4f}")
        text.write(f"routing/{task}_experts", key, " ".join(map(str, r.experts[:, 0])))
        count = " ".join(map(str, r.experts_per_frame()))
        text.write(f"routing/{task}_expert_count", key, count)


def manifest(s2e: Speech2EmotionEnhance, files: List[str]) -> Dict:
    """What a decode directory holds: the tasks' targets and the text files."""
    model = s2e.model
    return {
        "tasks": {t: model.heads[t].target.describe() for t in s2e.tasks},
        "files": files,
        # what a routing/<task>_experts entry spans, for the scoring stage's
        # speech- vs noise-dominated frames
        "frame_shift_sec": model.frontend.frame_shift() / s2e.fs,
    }


def decode(
    s2e: Speech2EmotionEnhance,
    wav_scp: str,
    out_dir: Path,
    key_file: Optional[str] = None,
    batch_size: int = 1,
    text_file: Optional[str] = None,
) -> None:
    """Run ``s2e`` over the utterances of ``wav_scp`` (those of ``key_file``).

    A model with a text frontend reads their transcripts from ``text_file``
    (Kaldi ``<utt> <words>``, the keys of ``wav_scp``); those it lacks, or all
    without it, are transcribed by ``s2e``'s ASR model (an error without one).
    """
    s2e.check_text_source(text_file is not None)
    reader = SoundScpReader(wav_scp, dtype="float32", always_2d=True)
    keys = list(read_kaldi(wav_scp))
    if key_file is not None:
        lines = Path(key_file).read_text(encoding="utf-8").splitlines()
        wanted = [line.split()[0] for line in lines if line.strip()]
        known = set(keys)  # the reader's `in` would try to read the audio
        unknown = [k for k in wanted if k not in known]
        if unknown:
            raise MeritInputError(
                f"{key_file}: {len(unknown)} keys not in {wav_scp}, e.g. {unknown[:3]}"
            )
        keys = wanted
    transcripts = None
    if text_file is not None:
        transcripts = read_kaldi(text_file)
        missing = [k for k in keys if k not in transcripts]
        if missing and s2e.asr_model is None:
            raise MeritInputError(
                f"{text_file}: no transcript for utterance '{missing[0]}' of "
                f"{wav_scp} ({len(missing)} of {len(keys)} have none; --asr_model "
                "would transcribe them)"
            )
        if missing:
            logger.info(f"{len(missing)} utterances without a transcript: ASR")
    out_dir.mkdir(parents=True, exist_ok=True)
    text = AtomicTextFiles(out_dir)
    failed: Dict[str, str] = {}
    for start in range(0, len(keys), batch_size):
        batch_keys = keys[start : start + batch_size]
        audio = {}
        for key in batch_keys:
            try:
                audio[key] = reader[key]
            except Exception as e:  # soundfile's errors do not name the scp line
                failed[key] = f"cannot read its audio: {e}"
        for key, res in _decode(s2e, audio, failed, transcripts).items():
            write_result(text, out_dir, key, res, s2e)
        logger.info(f"{start + len(batch_keys)}/{len(keys)} utterances")
    files = text.commit()
    if failed:
        atomic_write_text(
            out_dir / "failed", "".join(f"{k} {v}\n" for k, v in failed.items())
        )
    atomic_write_text(
        out_dir / MANIFEST, json.dumps(manifest(s2e, files), indent=2) + "\n"
    )
    if failed:
        key, reason = next(iter(failed.items()))
        raise MeritInputError(
            f"{wav_scp}: {len(failed)} of {len(keys)} utterances failed, e.g. "
            f"'{key}': {reason} (all in {out_dir / 'failed'}); the others are decoded"
        )


def _decode(
    s2e,
    audio: Dict[str, tuple],
    failed: Dict[str, str],
    transcripts: Optional[Dict[str, str]] = None,
):
    """Results of utterance -> (rate, samples) (and its transcript), one batch
    per sampling rate; an utterance that fails is recorded in ``failed``."""
    out = {}
    rates = {rate for rate, _ in audio.values()}
    text = (lambda k: None) if transcripts is None else transcripts.get
    for rate in sorted(rates):
        keys = [k for k, (r, _) in audio.items() if r == rate]
        texts = None if transcripts is None else [text(k) for k in keys]
        try:
            results = s2e.batch([audio[k][1] for k in keys], fs=rate, texts=texts)
            out.update(zip(keys, results))
        except MeritInputError:
            for key in keys:  # one by one, to find the culprit
                try:
                    out[key] = s2e(audio[key][1], fs=rate, text=text(key))
                except MeritInputError as e:
                    failed[key] = str(e).replace("recording 0", f"utterance '{key}'")
    return {k: out[k] for k in audio if k in out}
