"""Noisy-speech mixing: the one place mixtures are made (the recipe's noise
simulation and the generated test corpora both call it).

The paper's recipe (Sparse MERIT, §1 of the reference notes): each noise recording
is circularly shifted by a random offset, tiled or cut to the speech length, and
scaled by the power ratio that gives the target SNR. Reverberation (the paper's
future work) convolves the speech with a room impulse response first
(:func:`reverberate`); the noise is then scaled against the reverberant speech.
"""

from typing import Tuple

import numpy as np
from scipy.signal import fftconvolve

from espnet2_merit.errors import MeritInputError


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def fit_noise(
    noise: np.ndarray, length: int, rng: np.random.Generator
) -> Tuple[np.ndarray, int]:
    """Circularly shift ``noise`` by a random offset, then tile or cut it to
    ``length`` samples.

    Tiling and cutting are one operation: ``segment[i] = noise[(offset + i) % N]``,
    so a noise shorter than the speech repeats (wrapping around) and a longer one
    is cut; the offset is uniform over the N samples.

    Args:
        noise: (N,) noise waveform, N >= 1.
        length: Number of samples wanted (the speech length), >= 1.
        rng: Source of the offset (one integer draw).

    Returns:
        (segment, offset): (length,) segment of ``noise``'s dtype, and the offset
        in samples (0 <= offset < N) it starts at.
    """
    noise = np.asarray(noise)
    if noise.ndim != 1:
        raise MeritInputError(f"noise must be 1-D (samples,), got shape {noise.shape}")
    if noise.shape[0] == 0:
        raise MeritInputError("noise has no samples")
    if length < 1:
        raise MeritInputError(f"length must be >= 1 sample, got {length}")
    offset = int(rng.integers(noise.shape[0]))
    index = (offset + np.arange(length)) % noise.shape[0]
    return noise[index], offset


def mix(
    clean: np.ndarray, noise: np.ndarray, snr_db: float
) -> Tuple[np.ndarray, np.ndarray]:
    """Add ``noise`` to ``clean`` scaled by the power ratio that gives ``snr_db``.

    The SNR is 10 log10(P_clean / P_noise) over the whole signals (mean squares), so
    ``mixture - clean`` is exactly the scaled noise and the target is met by
    construction (up to the precision the result is later stored with).

    Args:
        clean: (T,) speech.
        noise: (T,) noise, already fitted to the speech length (:func:`fit_noise`).
        snr_db: Target SNR in dB.

    Returns:
        (mixture, scaled_noise), both (T,) and of the inputs' common float dtype
        (float32 for float32 inputs). The gain applied to the noise is
        ``sqrt(P_clean / (P_noise * 10 ** (snr_db / 10)))``.

    Raises:
        MeritInputError: shapes differ, a signal is silent (power 0: no gain gives
            the SNR) or holds NaN/Inf, or ``snr_db`` is not finite.
    """
    clean = np.asarray(clean)
    noise = np.asarray(noise)
    if clean.ndim != 1 or clean.shape != noise.shape:
        raise MeritInputError(
            f"clean and noise must be 1-D of the same length, got shapes "
            f"{clean.shape} and {noise.shape}"
        )
    if not np.isfinite(snr_db):
        raise MeritInputError(f"SNR must be a finite number of dB, got {snr_db}")
    p_clean, p_noise = _power(clean), _power(noise)
    for name, p in (("clean speech", p_clean), ("noise", p_noise)):
        if not np.isfinite(p):
            raise MeritInputError(f"{name} holds NaN or Inf samples")
        if p == 0.0:
            raise MeritInputError(f"{name} is silent (all zeros): no SNR is defined")
    gain = np.sqrt(p_clean / (p_noise * 10.0 ** (snr_db / 10.0)))
    dtype = np.result_type(clean.dtype, noise.dtype, np.float32)
    scaled = (noise.astype(np.float64) * gain).astype(dtype)
    return (clean.astype(np.float64) + scaled).astype(dtype), scaled


REFERENCES = ("dry", "early")


def reverberate(
    clean: np.ndarray,
    rir: np.ndarray,
    fs: int,
    reference: str = "dry",
    early_ms: float = 50.0,
) -> Tuple[np.ndarray, np.ndarray]:
    """Convolve ``clean`` with a room impulse response; return it and the SE reference.

    The RIR is scaled so that its direct path (its largest absolute sample, at
    delay ``d``) is 1, and the convolution is advanced by ``d`` samples and cut to
    the speech length, so the reverberant speech stays time-aligned with the dry
    speech and keeps its length (the propagation delay would otherwise shift every
    frame against the SE reference). Both outputs are then scaled by one gain that
    brings the reverberant speech back to the dry speech's power (as ESPnet's
    enhancement preprocessor does): the room would otherwise add 3-18 dB to the
    level (the mini recipe's rooms), a cue of the room, not of the speaker, and
    the reference keeps its level against the direct path in the mixture. Stage 2
    and dynamic mixing both reverberate here.

    Args:
        clean: (T,) dry speech.
        rir: (K,) impulse response at ``fs`` (one channel), K >= 1.
        fs: Sampling rate of both, for ``early_ms``.
        reference: What the SE head should recover: ``"dry"`` (the dry speech:
            dereverberation and denoising) or ``"early"`` (the speech convolved
            with the direct path and the next ``early_ms`` ms of the RIR only, as
            ESPnet's enhancement recipes offer: denoising and late-reverberation
            removal).
        early_ms: Length of the early part after the direct path.

    Returns:
        (reverberant, reference), both (T,) float64, aligned with ``clean``, the
        reverberant speech at the power of ``clean``.

    Raises:
        MeritInputError: shapes are not 1-D, the RIR is empty, silent or not
            finite, the reverberant speech is silent, or ``reference`` is
            unknown.
    """
    clean = np.asarray(clean, dtype=np.float64)
    rir = np.asarray(rir, dtype=np.float64)
    if clean.ndim != 1 or rir.ndim != 1:
        raise MeritInputError(
            f"speech and RIR must be 1-D, got shapes {clean.shape} and {rir.shape}"
        )
    if reference not in REFERENCES:
        raise MeritInputError(
            f"RIR reference {reference!r} is not one of {list(REFERENCES)}"
        )
    if rir.size == 0 or not np.all(np.isfinite(rir)):
        raise MeritInputError("RIR is empty or holds NaN/Inf samples")
    delay = int(np.argmax(np.abs(rir)))
    if rir[delay] == 0.0:
        raise MeritInputError("RIR is silent (all zeros)")
    rir = rir / abs(rir[delay])
    length = clean.shape[0]

    def apply(h: np.ndarray) -> np.ndarray:
        return fftconvolve(clean, h)[delay : delay + length].astype(np.float32)

    wet = apply(rir).astype(np.float64)
    if reference == "dry":
        ref = clean.astype(np.float32).astype(np.float64)
    else:
        ref = apply(rir[: delay + 1 + int(round(early_ms * fs / 1000.0))])
        ref = ref.astype(np.float64)
    wet_power = float(np.mean(wet**2))
    if wet_power == 0.0:
        raise MeritInputError("reverberant speech is silent: no SNR can be set")
    gain = np.sqrt(float(np.mean(clean**2)) / wet_power)
    return wet * gain, ref * gain
