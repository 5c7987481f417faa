"""Speech-enhancement metrics of one utterance: segmental SNR, SI-SDR, PESQ, STOI.

All functions take the clean reference first and the signal under test (enhanced
output, or the noisy input as a baseline) second, as (N,) arrays at rate ``fs``.
Higher is better for every metric.
"""

import logging
import math
import warnings
from typing import Optional, Tuple

import numpy as np

from espnet2_merit.errors import MeritInputError

logger = logging.getLogger(__name__)

SSNR_DEFINITION = (
    "Segmental SNR (SSNR, dB): the clean reference and the signal under test are cut "
    "into 30 ms frames with 75% overlap (7.5 ms hop; only complete frames, no "
    "window); per frame SNR = 10 log10(sum clean^2 / sum (clean - test)^2), clipped "
    "to [-10, 35] dB (a frame with no error counts as 35 dB, a silent clean frame "
    "with any error as -10 dB); SSNR is the mean over ALL frames, silent ones "
    "included (no voice-activity threshold), and the set value is the mean over "
    "utterances. The signals are compared as they are (no level or delay alignment)."
)


def _as_signal(x: np.ndarray, name: str, utt: Optional[str]) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2 and 1 in x.shape:  # (N, 1) from soundfile's always_2d
        x = x.reshape(-1)
    if x.ndim != 1:
        raise MeritInputError(
            f"{_who(utt)}: {name} must be a mono (N,) signal, got shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise MeritInputError(f"{_who(utt)}: {name} contains NaN or Inf samples")
    return x


def _who(utt: Optional[str]) -> str:
    return f"utterance '{utt}'" if utt is not None else "signal"


def match_lengths(
    clean: np.ndarray,
    test: np.ndarray,
    fs: int,
    utt: Optional[str] = None,
    frame_ms: float = 30.0,
) -> Tuple[np.ndarray, np.ndarray]:
    """Check that two signals cover the same time span and trim them to one length.

    Resampling and STFT round trips may shift the length by a few samples; that
    much is trimmed (with a warning). A difference of one analysis frame
    (``frame_ms``) or more means the signals do not belong together: an error.

    Args:
        clean: (N1,) reference.
        test: (N2,) signal under test.
        fs: Sampling rate in Hz.
        utt: Utterance id for messages.
        frame_ms: Tolerated difference (exclusive), in milliseconds.

    Returns:
        The two (min(N1, N2),) float64 signals.
    """
    clean = _as_signal(clean, "clean reference", utt)
    test = _as_signal(test, "test signal", utt)
    diff = abs(len(clean) - len(test))
    if diff:
        frame = int(round(fs * frame_ms / 1000))
        if diff >= frame:
            raise MeritInputError(
                f"{_who(utt)}: reference has {len(clean)} samples, test signal "
                f"{len(test)} (differ by {diff} >= one {frame_ms:g} ms frame)"
            )
        logger.warning(
            f"{_who(utt)}: lengths {len(clean)} and {len(test)} differ by {diff} "
            "samples: trimmed to the shorter"
        )
        n = min(len(clean), len(test))
        clean, test = clean[:n], test[:n]
    return clean, test


def segmental_snr(
    clean: np.ndarray,
    enhanced: np.ndarray,
    fs: int,
    frame_ms: float = 30.0,
    overlap: float = 0.75,
    min_db: float = -10.0,
    max_db: float = 35.0,
    utt: Optional[str] = None,
) -> float:
    """Segmental SNR in dB (see ``SSNR_DEFINITION``).

    Frames of ``frame_ms`` hop by ``frame_ms * (1 - overlap)``; only complete
    frames count (a signal shorter than one frame is an error). Per frame,
    ``10 log10(sum(clean**2) / sum((clean - enhanced)**2))`` clipped to
    ``[min_db, max_db]``; the result is the mean over all frames.

    All frames are kept, including silent ones: a silence threshold would be
    another free parameter that changes the number (and a system that adds noise
    in pauses should pay for it). Silent clean frames with any error sit at
    ``min_db``, which is why SSNR values are lower than "speech-frames-only"
    variants. Exact zero energies are handled without epsilons: no error gives
    ``max_db``; a silent clean frame with some error gives ``min_db``.

    Args:
        clean: (N,) clean reference.
        enhanced: (N,) signal under test (lengths must match, see
            ``match_lengths``).
        fs: Sampling rate in Hz.
        frame_ms: Frame length in milliseconds.
        overlap: Fraction of a frame shared by consecutive frames, in [0, 1).
        min_db: Lower clipping bound per frame.
        max_db: Upper clipping bound per frame.
        utt: Utterance id for messages.

    Returns:
        The mean clipped frame SNR in dB.
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    clean, enhanced = match_lengths(clean, enhanced, fs, utt, frame_ms)
    frame = int(round(fs * frame_ms / 1000))
    hop = max(1, int(round(frame * (1 - overlap))))
    if len(clean) < frame:
        raise MeritInputError(
            f"{_who(utt)}: {len(clean)} samples is shorter than one "
            f"{frame_ms:g} ms SSNR frame ({frame} samples)"
        )
    # (T, frame) strided views: no copy of the signal per frame.
    frames = np.lib.stride_tricks.sliding_window_view
    c = frames(clean, frame)[::hop]
    e = frames(clean - enhanced, frame)[::hop]
    signal, error = (c**2).sum(-1), (e**2).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = 10 * np.log10(signal / error)
    snr[error == 0] = max_db  # includes 0/0: a perfectly reproduced silence
    return float(np.clip(snr, min_db, max_db).mean())


def si_sdr(
    clean: np.ndarray, enhanced: np.ndarray, fs: int = 16000, utt: Optional[str] = None
) -> float:
    """Scale-invariant signal-to-distortion ratio in dB.

    Both signals are made zero-mean; the target is the projection of the
    estimate on the reference, ``alpha * clean`` with
    ``alpha = <enhanced, clean> / <clean, clean>``, and the rest is distortion.
    An estimate without distortion gives ``inf``.

    Args:
        clean: (N,) clean reference (not all constant).
        enhanced: (N,) signal under test.
        fs: Sampling rate (only to judge a length mismatch).
        utt: Utterance id for messages.
    """
    clean, enhanced = match_lengths(clean, enhanced, fs, utt)
    clean = clean - clean.mean()
    enhanced = enhanced - enhanced.mean()
    energy = np.dot(clean, clean)
    if energy == 0:
        raise MeritInputError(f"{_who(utt)}: SI-SDR of a silent (constant) reference")
    target = np.dot(enhanced, clean) / energy * clean
    distortion = enhanced - target
    t, d = np.dot(target, target), np.dot(distortion, distortion)
    if d == 0:
        return math.inf
    if t == 0:
        return -math.inf
    return float(10 * np.log10(t / d))


def _resample(x: np.ndarray, fs: int, target: int) -> np.ndarray:
    if fs == target:
        return x
    from scipy.signal import resample_poly  # slow import, rarely needed

    g = math.gcd(int(fs), int(target))
    return resample_poly(x, target // g, int(fs) // g)


def pesq_wb(
    clean: np.ndarray, enhanced: np.ndarray, fs: int, utt: Optional[str] = None
) -> float:
    """Wide-band PESQ (ITU-T P.862.2, MOS-LQO about 1.0-4.6) by the ``pesq`` package.

    Signals at another rate are resampled to 16 kHz first. PESQ's own failures
    (no utterance detected, too short a buffer) give NaN and a warning naming the
    utterance; the caller counts them.

    Args:
        clean: (N,) clean reference.
        enhanced: (N,) signal under test.
        fs: Sampling rate in Hz.
        utt: Utterance id for messages.
    """
    from pesq import PesqError, pesq

    clean, enhanced = match_lengths(clean, enhanced, fs, utt)
    clean, enhanced = _resample(clean, fs, 16000), _resample(enhanced, fs, 16000)
    try:
        return float(pesq(16000, clean, enhanced, "wb"))
    except PesqError as e:
        logger.warning(f"{_who(utt)}: PESQ failed ({type(e).__name__}: {e}): NaN")
        return math.nan


def stoi(
    clean: np.ndarray, enhanced: np.ndarray, fs: int, utt: Optional[str] = None
) -> float:
    """Short-time objective intelligibility (0-1) by ``pystoi`` (classic, not
    extended). pystoi resamples to 10 kHz itself. When too few non-silent frames
    remain it returns a placeholder 1e-5; that becomes NaN with a warning.

    Args:
        clean: (N,) clean reference.
        enhanced: (N,) signal under test.
        fs: Sampling rate in Hz.
        utt: Utterance id for messages.
    """
    from pystoi import stoi as pystoi_stoi

    clean, enhanced = match_lengths(clean, enhanced, fs, utt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(pystoi_stoi(clean, enhanced, fs, extended=False))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        logger.warning(f"{_who(utt)}: STOI has too few non-silent frames: NaN")
        return math.nan
    return value
