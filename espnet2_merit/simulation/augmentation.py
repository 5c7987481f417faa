"""On-the-fly augmentation whose type is a training label (MTL-AUG).

Latif et al., "Multitask Learning From Augmented Auxiliary Data for Improving
Speech Emotion Recognition" (IEEE Trans. Affective Computing 2023, arXiv
2207.05298): auxiliary tasks that need no meta labels train the shared
representation, among them classifying which augmentation an utterance got and
reconstructing its un-augmented input. ``MeritTask --augmentation`` draws one
type per training utterance and epoch; the preprocessor then adds

- ``aug_type``: the type drawn (a label; a task on it classifies the type), and
- ``speech_unaugmented``: the input before augmentation (what a
  ``reconstruction`` task recovers).

Development data is not augmented (its ``aug_type`` is ``none``), so the dev
metrics that select the model are those of the real input.

Types (``types`` lists those drawn, uniformly):

- ``none``: unchanged;
- ``noise``: a recording of ``noise_scp`` (circularly shifted, tiled or cut) at
  an SNR uniform in ``snr_range`` against the input (the stage-2 mixing);
- ``reverb``: a room impulse response of ``rir_scp``, aligned and at the input's
  level (:func:`espnet2_merit.simulation.mixing.reverberate`);
- ``speed``: resampled by a factor of ``speed_factors`` (tempo and pitch
  together, as Kaldi's and ESPnet's speed perturbation);
- ``pitch``: shifted by a whole number of semitones, 1 to ``pitch_semitones``
  up or down, tempo kept (``librosa.effects.pitch_shift``);
- ``mask``: SpecAugment on the waveform: one time span of up to ``time_mask`` of
  the length set to zero, and one band of up to ``freq_mask`` of the STFT bins
  removed.

Speed and pitch change the utterance itself: the waveform targets (the clean
reference) get the same change, so enhancement stays aligned. Noise,
reverberation and masking corrupt the input only: the SE head learns to remove
them. Every draw comes from a generator seeded by (seed, epoch, utterance) only,
as in dynamic mixing: a resumed run, another worker or rank see the same
augmentation.
"""

import functools
import inspect
import math
from fractions import Fraction
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from scipy.signal import istft, resample_poly, stft
from typeguard import TypeCheckError, typechecked

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import AUG_LABEL, AUG_SOURCE
from espnet2_merit.simulation.dynamic_mixing import read_pool
from espnet2_merit.simulation.mixing import fit_noise, mix, reverberate
from espnet2_merit.simulation.simulate import load_noise, load_rir, utt_rng

OPTION = "augmentation"
TYPES = ("none", "noise", "reverb", "speed", "pitch", "mask")
LABEL, SOURCE = AUG_LABEL, AUG_SOURCE  # the type drawn, the input before
STFT_SIZE = 512  # frequency masking's analysis


class Augmenter:
    """Draws and applies one augmentation type per (seed, epoch, utterance).

    Args:
        types: The types drawn, in the order of the ``aug_type`` classes.
        fs: Sampling rate of the speech (noise and RIRs are resampled to it).
        seed: Seed of the draws.
        noise_scp: "<noise_id> <audio file>" pool (needed by ``noise``).
        snr_range: [lo, hi] dB of ``noise``.
        rir_scp: "<rir_id> <audio file>" pool (needed by ``reverb``).
        speed_factors: Factors of ``speed`` (> 0, not 1).
        pitch_semitones: Largest shift of ``pitch`` (>= 1).
        time_mask: Largest fraction of the length ``mask`` zeroes (0-1).
        freq_mask: Largest fraction of the STFT bins ``mask`` removes (0-1).
    """

    @typechecked
    def __init__(
        self,
        types: Sequence[str] = TYPES,
        fs: int = 16000,
        seed: int = 0,
        noise_scp: Optional[str] = None,
        snr_range: Sequence[float] = (0.0, 20.0),
        rir_scp: Optional[str] = None,
        speed_factors: Sequence[float] = (0.9, 1.1),
        pitch_semitones: int = 2,
        time_mask: float = 0.2,
        freq_mask: float = 0.2,
    ):
        types = [str(t) for t in types]
        unknown = [t for t in types if t not in TYPES]
        if unknown or not types or len(set(types)) != len(types):
            raise MeritInputError(
                f"{OPTION}.types: expected distinct types of {list(TYPES)}, got "
                f"{types}"
            )
        for name, needs in (("noise", noise_scp), ("reverb", rir_scp)):
            if name in types and needs is None:
                key = "noise_scp" if name == "noise" else "rir_scp"
                raise MeritInputError(f"{OPTION}: type '{name}' needs {OPTION}.{key}")
        lo, hi = (list(snr_range) + [math.nan, math.nan])[:2]
        if len(snr_range) != 2 or not lo <= hi or not math.isfinite(lo + hi):
            raise MeritInputError(
                f"{OPTION}.snr_range: expected [lo, hi] in dB, got {list(snr_range)}"
            )
        if not speed_factors or any(not f > 0 or f == 1 for f in speed_factors):
            raise MeritInputError(
                f"{OPTION}.speed_factors: expected factors > 0 other than 1, got "
                f"{list(speed_factors)}"
            )
        if pitch_semitones < 1:
            raise MeritInputError(
                f"{OPTION}.pitch_semitones: expected >= 1, got {pitch_semitones}"
            )
        for key, value in (("time_mask", time_mask), ("freq_mask", freq_mask)):
            if not 0 < value <= 1:
                raise MeritInputError(f"{OPTION}.{key}: expected (0, 1], got {value}")
        self.types, self.fs, self.seed = types, fs, seed
        self.noise = read_pool(noise_scp, "noise_scp", OPTION) if noise_scp else []
        self.rirs = read_pool(rir_scp, "rir_scp", OPTION) if rir_scp else []
        self.snr_range = (float(lo), float(hi))
        self.speed_factors = [float(f) for f in speed_factors]
        self.pitch_semitones = pitch_semitones
        self.time_mask, self.freq_mask = time_mask, freq_mask

    def draw(self, uid: str, epoch: int) -> Tuple[str, np.random.Generator]:
        """The type of utterance ``uid`` in ``epoch`` and the generator of its
        further draws."""
        rng = utt_rng(self.seed, f"aug/{epoch}/{uid}")
        return self.types[int(rng.integers(len(self.types)))], rng

    def __call__(
        self,
        speech: np.ndarray,
        references: Dict[str, np.ndarray],
        uid: str,
        epoch: int,
    ) -> Tuple[np.ndarray, Dict[str, np.ndarray], str]:
        """Augment one utterance.

        Args:
            speech: (T,) the input.
            references: Waveform targets (T,) each, aligned with ``speech``.
            uid: Utterance id.
            epoch: Training epoch (1-based).

        Returns:
            (T',) augmented input, the references after the same change of the
            utterance (speed, pitch; T' samples) or as given, and the type.
        """
        kind, rng = self.draw(uid, epoch)
        speech = np.asarray(speech, dtype=np.float32)
        change = None  # speed and pitch: the same change of every waveform
        if kind == "speed":
            factor = self.speed_factors[int(rng.integers(len(self.speed_factors)))]
            change = functools.partial(_speed, factor=factor)
        elif kind == "pitch":
            steps = int(rng.integers(1, self.pitch_semitones + 1))
            steps *= 1 if rng.random() < 0.5 else -1
            change = functools.partial(_pitch, fs=self.fs, steps=steps)
        if change is not None:
            return change(speech), {k: change(v) for k, v in references.items()}, kind
        if kind == "noise":
            speech = self._noise(speech, rng, uid)
        elif kind == "reverb":
            rir_id, path = self.rirs[int(rng.integers(len(self.rirs)))]
            speech = reverberate(speech, load_rir(path, rir_id, self.fs), self.fs)[0]
        elif kind == "mask":
            speech = self._mask(speech, rng)
        return np.asarray(speech, dtype=np.float32), dict(references), kind

    def _noise(self, speech: np.ndarray, rng, uid: str) -> np.ndarray:
        if not np.any(speech):
            return speech  # a silent input has no SNR: left as it is
        noise_id, path = self.noise[int(rng.integers(len(self.noise)))]
        segment, _ = fit_noise(load_noise(path, noise_id, self.fs), len(speech), rng)
        if not np.any(segment):
            return speech
        return mix(speech, segment, float(rng.uniform(*self.snr_range)))[0]

    def _mask(self, speech: np.ndarray, rng) -> np.ndarray:
        """The band first, then the time span (which the STFT would smear)."""
        n = len(speech)
        out = speech.copy()
        if n >= STFT_SIZE:
            _, _, spec = stft(out, nperseg=STFT_SIZE, noverlap=STFT_SIZE * 3 // 4)
            bins = spec.shape[0]
            band = int(rng.integers(1, max(2, int(self.freq_mask * bins) + 1)))
            low = int(rng.integers(max(1, bins - band + 1)))
            spec[low : low + band] = 0.0
            _, wav = istft(spec, nperseg=STFT_SIZE, noverlap=STFT_SIZE * 3 // 4)
            out = np.pad(wav[:n], (0, max(0, n - len(wav)))).astype(np.float32)
        width = int(rng.integers(1, max(2, int(self.time_mask * n) + 1)))
        start = int(rng.integers(max(1, n - width + 1)))
        out[start : start + width] = 0.0
        return out


def _speed(x: np.ndarray, factor: float) -> np.ndarray:
    """``x`` played ``factor`` times as fast: length / factor samples."""
    ratio = Fraction(1.0 / factor).limit_denominator(100)
    return resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)


def _pitch(x: np.ndarray, fs: int, steps: int) -> np.ndarray:
    import librosa  # imported here: it loads numba, slow to import

    return librosa.effects.pitch_shift(x, sr=fs, n_steps=steps).astype(np.float32)


def build_augmenter(conf: Optional[Dict], fs: int, default_seed: int) -> Augmenter:
    """The augmenter of an ``augmentation`` config section (``seed`` defaults
    to the run's ``--seed``); errors name the key."""
    if not isinstance(conf, dict):
        raise MeritInputError(f"{OPTION}: expected a mapping of options, got {conf!r}")
    keys = [k for k in inspect.signature(Augmenter.__init__).parameters][1:]
    unknown = sorted(set(conf) - set(keys) | set(conf) & {"fs"})
    if unknown:
        known = [k for k in keys if k != "fs"]
        raise MeritInputError(f"{OPTION}: unknown key '{unknown[0]}' (known: {known})")
    conf = {"seed": default_seed, **conf}
    try:
        return Augmenter(fs=fs, **conf)
    except (TypeError, TypeCheckError) as e:  # a value of the wrong type
        raise MeritInputError(f"{OPTION}: {e}") from None
