"""Noisy-speech mixing: the one place mixtures are made (the recipe's noise
simulation and the generated test corpora both call it).

The paper's recipe (Sparse MERIT, §1 of the reference notes): each noise recording
is circularly shifted by a random offset, tiled or cut to the speech length, and
scaled by the power ratio that gives the target SNR.
"""

from typing import Tuple

import numpy as np

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
