"""Small generated corpora in the data-directory format MeritTask trains on.

Each utterance is a harmonic "voice" whose pitch level, pitch range, syllable rate
and energy depend on its emotion class (with overlapping random spreads), mixed with
white or babble-like noise at a target SNR. Used by the tests and the demo; the mini
recipe builds a more realistic corpus from synthesised speech.
"""

from pathlib import Path
from typing import Dict, Sequence, Union

import numpy as np
import soundfile

from espnet2_merit.simulation.mixing import mix

# (pitch Hz, pitch range, syllables/s, amplitude) per class: angry, sad, happy, neutral.
PROSODY: Dict[str, tuple] = {
    "A": (220.0, 0.35, 5.5, 0.5),
    "S": (140.0, 0.08, 2.5, 0.15),
    "H": (250.0, 0.30, 4.5, 0.35),
    "N": (170.0, 0.12, 3.5, 0.25),
}
# Arousal, valence, dominance (1-7 scale) per class.
ATTRIBUTES = {
    "A": (6.0, 2.0, 5.5),
    "S": (2.0, 2.5, 2.5),
    "H": (5.0, 6.0, 4.5),
    "N": (3.5, 4.0, 4.0),
}


def voice(label: str, seconds: float, fs: int, rng: np.random.Generator):
    """A harmonic signal with class-dependent prosody, (N,) float32."""
    f0, spread, rate, amp = PROSODY[label]
    f0 *= rng.uniform(0.85, 1.15)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    contour = f0 * (1 + spread * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t))
    phase = 2 * np.pi * np.cumsum(contour) / fs
    wav = sum(np.sin(h * phase) / h for h in range(1, 8))
    syllables = 0.5 * (1 + np.sin(2 * np.pi * rate * rng.uniform(0.8, 1.2) * t))
    wav = wav * syllables**2 * amp * rng.uniform(0.7, 1.3)
    return wav.astype(np.float32)


# A transcript per class (words of utils/text_checkpoint.py's TINY_WORDS).
TRANSCRIPTS = {
    "A": "why did you do that again now",
    "S": "no it was not a good day today",
    "H": "thanks this is really very good",
    "N": "the report is here at the end of the week",
}


def make_data_dir(
    outdir: Union[str, Path],
    num_utts: int = 20,
    fs: int = 16000,
    labels: Sequence[str] = ("A", "S", "H", "N"),
    snr_db: float = 5.0,
    min_sec: float = 1.0,
    max_sec: float = 2.5,
    seed: int = 0,
    text: bool = False,
) -> Path:
    """Write a Kaldi-style data dir with wavs.

    Files: ``wav.scp`` (noisy), ``spk1.scp`` (clean), ``emotion``,
    ``emotion_attr``, ``emotion_votes`` (3 votes for the label, 1 for the next
    class), ``utt2spk``, ``emotion_list``; audio in ``wav/``; with ``text``
    also ``text``, a transcript per utterance (``TRANSCRIPTS``, of its label,
    so text alone can learn the classes).
    """
    outdir = Path(outdir)
    (outdir / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    files = {
        k: []
        for k in (
            "wav.scp", "spk1.scp", "emotion", "emotion_attr", "emotion_votes", "utt2spk"
        )
    }  # fmt: skip
    for i in range(num_utts):
        label = labels[i % len(labels)]
        uid = f"spk{i % 3}-utt{i:04d}"
        clean = voice(label, rng.uniform(min_sec, max_sec), fs, rng)
        noise = rng.standard_normal(len(clean)).astype(np.float32)
        if i % 2:  # babble-like: smoothed, amplitude-modulated noise
            noise = np.convolve(noise, np.ones(8) / 8, mode="same")
            noise *= 1 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(len(noise)) / fs)
        noisy, _ = mix(clean, noise, snr_db)
        peak = max(1.0, float(np.abs(noisy).max()) / 0.9)  # no clipping
        for name, wav in (("noisy", noisy / peak), ("clean", clean / peak)):
            soundfile.write(outdir / "wav" / f"{uid}_{name}.wav", wav, fs)
        files["wav.scp"].append(f"{uid} {outdir.resolve()}/wav/{uid}_noisy.wav")
        files["spk1.scp"].append(f"{uid} {outdir.resolve()}/wav/{uid}_clean.wav")
        files["emotion"].append(f"{uid} {label}")
        other = labels[(i + 1) % len(labels)]
        files["emotion_votes"].append(f"{uid} {label}:3 {other}:1")
        aro, val, dom = np.array(ATTRIBUTES[label]) + rng.normal(0, 0.3, 3)
        files["emotion_attr"].append(f"{uid} {aro:.2f} {val:.2f} {dom:.2f}")
        files["utt2spk"].append(f"{uid} spk{i % 3}")
        if text:
            words = TRANSCRIPTS[label].split()
            # 2.. words, drawn from no generator: the audio is as without text.
            n = 2 + i % (len(words) - 1)
            files.setdefault("text", []).append(f"{uid} {' '.join(words[:n])}")
    for name, lines in files.items():
        (outdir / name).write_text("\n".join(sorted(lines)) + "\n")
    (outdir / "emotion_list").write_text("\n".join(labels) + "\n")
    return outdir
