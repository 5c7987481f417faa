"""On-the-fly (dynamic) mixing: noisy training speech made in the data loader.

Instead of reading the stage-2 mixtures, training can read the clean speech and
mix noise (and, with a probability, reverberation) into it every time an
utterance is loaded (``MeritTask --dynamic_mixing``), so every epoch sees new
noise segments, SNRs and rooms. Development and test data stay the fixed stage-2
mixtures.

Every random choice for an utterance comes from a generator seeded by
(seed, epoch, utterance id) only (the hash of
:func:`espnet2_merit.simulation.simulate.utt_rng`): the mixture does not depend
on which DataLoader worker or which rank loads the utterance, nor on the order
of the batches, so a resumed run and a re-run see the same mixtures, and two
workers or ranks never repeat each other's draws (they load different
utterances, or the same utterance in different epochs).

The mixing itself is the stage-2 recipe's (:func:`fit_noise`, :func:`mix`,
:func:`reverberate`): one noise file of the pool, circularly shifted at random
and tiled or cut to the speech length, scaled to an SNR drawn uniformly from
``snr_range`` against the (reverberant) speech.
"""

import collections
import logging
import math
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError
from espnet2_merit.simulation.mixing import REFERENCES, fit_noise, mix, reverberate
from espnet2_merit.simulation.simulate import (
    MAX_DRAWS,
    load_noise,
    load_rir,
    utt_rng,
)
from espnet2_merit.utils.datadir import iter_kaldi

logger = logging.getLogger(__name__)
OPTION = "dynamic_mixing"
# key -> (required, default); seed's default is the run's --seed
KEYS: Dict[str, Tuple[bool, Any]] = {
    "noise_scp": (True, None),
    "snr_range": (True, None),
    "rir_scp": (False, None),
    "rir_prob": (False, 0.0),
    "rir_reference": (False, "dry"),
    "early_ms": (False, 50.0),
    "seed": (False, None),
    "cache_mb": (False, 512.0),
}


class Mixture(NamedTuple):
    """One dynamically mixed utterance and what was drawn for it."""

    noisy: np.ndarray  # (T,) float32 model input
    reference: np.ndarray  # (T,) float32 SE target (dry or early speech)
    snr_db: float
    noise_id: str
    offset: int  # noise sample the fitted segment starts at
    rir_id: Optional[str]  # None: no reverberation


def read_pool(path: str, key: str, option: str = OPTION) -> List[Tuple[str, str]]:
    """(id, audio file) of a pool list, sorted by id; missing files are errors
    naming the option's key and the line."""
    if not Path(path).is_file():
        raise MeritInputError(f"{option}.{key}: no such file {path}")
    pool = []
    for num, pid, audio in iter_kaldi(path):
        if not Path(audio).is_file():
            raise MeritInputError(
                f"{option}.{key} {path}:{num}: '{pid}': no such audio file {audio}"
            )
        pool.append((pid, audio))
    if not pool:
        raise MeritInputError(f"{option}.{key} {path}: the pool is empty")
    return sorted(pool)


def _number(conf: Dict, key: str, lo: float, hi: float = math.inf) -> float:
    value = conf[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MeritInputError(f"{OPTION}.{key}: expected a number, got {value!r}")
    if not (lo <= value <= hi) or math.isnan(value):
        raise MeritInputError(
            f"{OPTION}.{key}: expected a number in [{lo}, {hi}], got {value}"
        )
    return float(value)


class DynamicMixer:
    """Mixes noise (and reverberation) into clean training speech per
    (seed, epoch, utterance).

    Noise audio is cached per process (least recently used first out) up to
    ``cache_mb``; :meth:`preload` fills the cache in pool order before the
    DataLoader forks its workers, which then share those pages. RIRs are short
    and cached by :func:`load_rir`.

    Args:
        noise_scp: "<noise_id> <audio file>" list of the training noise pool.
        snr_range: (lo, hi) dB; each mixture's SNR is uniform in it (lo == hi:
            that SNR).
        fs: Sampling rate of the speech; noise and RIRs are resampled to it.
        rir_scp: "<rir_id> <audio file>" list of room impulse responses.
        rir_prob: Probability that an utterance is reverberated (needs rir_scp).
        rir_reference: SE target of a reverberated utterance: ``dry`` or
            ``early`` (:func:`reverberate`).
        early_ms: Early part of the RIR kept in the ``early`` reference.
        seed: Seed of the draws.
        cache_mb: Noise cache size per process in MiB (0: read every draw).
    """

    @typechecked
    def __init__(
        self,
        noise_scp: str,
        snr_range: Sequence[float],
        fs: int = 16000,
        rir_scp: Optional[str] = None,
        rir_prob: float = 0.0,
        rir_reference: str = "dry",
        early_ms: float = 50.0,
        seed: int = 0,
        cache_mb: float = 512.0,
    ):
        if len(snr_range) != 2 or not all(np.isfinite(snr_range)):
            raise MeritInputError(
                f"{OPTION}.snr_range: expected [lo, hi] in dB, got {list(snr_range)}"
            )
        if not snr_range[0] <= snr_range[1]:
            raise MeritInputError(
                f"{OPTION}.snr_range: lo must not exceed hi, got {list(snr_range)}"
            )
        if not 0.0 <= rir_prob <= 1.0:
            raise MeritInputError(f"{OPTION}.rir_prob: expected [0, 1], got {rir_prob}")
        if rir_prob > 0 and rir_scp is None:
            raise MeritInputError(
                f"{OPTION}.rir_prob is {rir_prob} but no rir_scp is given"
            )
        if rir_reference not in REFERENCES:
            raise MeritInputError(
                f"{OPTION}.rir_reference: {rir_reference!r} is not one of "
                f"{list(REFERENCES)}"
            )
        if not early_ms >= 0:
            raise MeritInputError(f"{OPTION}.early_ms: expected >= 0, got {early_ms}")
        if not cache_mb >= 0:
            raise MeritInputError(f"{OPTION}.cache_mb: expected >= 0, got {cache_mb}")
        self.noise = read_pool(noise_scp, "noise_scp")
        self.rirs = read_pool(rir_scp, "rir_scp") if rir_scp is not None else []
        self.snr_range = (float(snr_range[0]), float(snr_range[1]))
        self.fs = fs
        self.rir_prob = rir_prob
        self.rir_reference = rir_reference
        self.early_ms = early_ms
        self.seed = seed
        self.cache_bytes = int(cache_mb * 2**20)
        self._cache: "collections.OrderedDict[int, np.ndarray]" = (
            collections.OrderedDict()
        )
        self._cached = 0  # bytes held
        self._preloaded = False

    def __getstate__(self):  # a spawned worker starts with an empty cache
        state = dict(self.__dict__)
        state["_cache"], state["_cached"] = collections.OrderedDict(), 0
        state["_preloaded"] = False
        return state

    # ------------------------------------------------------------------ noise
    def _read(self, index: int) -> np.ndarray:
        noise_id, path = self.noise[index]
        # load_noise's own cache holds 8 files of any size: this one is bounded.
        return load_noise.__wrapped__(path, noise_id, self.fs).astype(np.float32)

    def noise_audio(self, index: int) -> np.ndarray:
        """(N,) float32 noise ``index`` of the pool at ``fs``, through the cache."""
        wav = self._cache.get(index)
        if wav is not None:
            self._cache.move_to_end(index)
            return wav
        wav = self._read(index)
        if wav.nbytes <= self.cache_bytes:
            self._cache[index] = wav
            self._cached += wav.nbytes
            while self._cached > self.cache_bytes:
                _, old = self._cache.popitem(last=False)
                self._cached -= old.nbytes
        return wav

    def preload(self) -> None:
        """Fill the cache with the pool's noise in pool order while it fits (once
        per process; call it before the DataLoader forks)."""
        if self._preloaded or self.cache_bytes == 0:
            return
        self._preloaded = True
        for index in range(len(self.noise)):
            if index in self._cache:
                continue
            wav = self._read(index)
            if self._cached + wav.nbytes > self.cache_bytes:
                break
            self._cache[index] = wav
            self._cached += wav.nbytes
        logger.info(
            f"{OPTION}: {len(self._cache)} of {len(self.noise)} noise files cached "
            f"({self._cached / 2**20:.1f} of {self.cache_bytes / 2**20:.0f} MiB)"
        )

    # ------------------------------------------------------------------ draws
    def rng(self, uid: str, epoch: int, what: str = "mix") -> np.random.Generator:
        """The generator of one utterance in one epoch (``what``: which draws)."""
        return utt_rng(self.seed, f"{what}/{epoch}/{uid}")

    def crop_start(self, uid: str, epoch: int, spare: int) -> int:
        """A training crop's first sample, of ``spare + 1``, per (seed, epoch, utt)."""
        return int(self.rng(uid, epoch, "crop").integers(spare + 1))

    def mix_utt(self, clean: np.ndarray, uid: str, epoch: int) -> Mixture:
        """Mix one utterance.

        Draw order (one generator): SNR, whether to reverberate, the RIR (drawn
        whenever a pool is given, so the noise draws do not depend on
        ``rir_prob``), then the noise file and its offset (redrawn, up to
        ``MAX_DRAWS`` times, when the fitted segment is digitally silent).

        Args:
            clean: (T,) clean speech (already cropped).
            uid: Utterance id.
            epoch: Training epoch (1-based, as ESPnet counts).

        Returns:
            The :class:`Mixture` (float32 noisy input and SE reference, (T,)).

        Raises:
            MeritInputError: the speech is silent, or only silent noise was drawn.
        """
        clean = np.asarray(clean, dtype=np.float32)
        if clean.ndim != 1 or clean.size == 0 or not np.any(clean):
            raise MeritInputError(
                f"utterance '{uid}': the clean speech (window) is empty or silent: "
                f"no SNR can be set ({OPTION})"
            )
        rng = self.rng(uid, epoch)
        snr = float(rng.uniform(*self.snr_range))
        reverb = bool(rng.random() < self.rir_prob)
        rir_index = int(rng.integers(len(self.rirs))) if self.rirs else None
        speech, reference, rir_id = clean, clean, None
        if reverb:
            rir_id, path = self.rirs[rir_index]
            speech, reference = reverberate(
                clean,
                load_rir(path, rir_id, self.fs),
                self.fs,
                self.rir_reference,
                self.early_ms,
            )
        for _ in range(MAX_DRAWS):
            index = int(rng.integers(len(self.noise)))
            segment, offset = fit_noise(self.noise_audio(index), len(clean), rng)
            if np.any(segment):
                break
        else:
            raise MeritInputError(
                f"utterance '{uid}': {MAX_DRAWS} noise draws gave only silent "
                f"segments (last: '{self.noise[index][0]}'); check {OPTION}.noise_scp"
            )
        noisy, _ = mix(speech, segment, snr)
        return Mixture(
            noisy.astype(np.float32),
            np.asarray(reference, dtype=np.float32),
            snr,
            self.noise[index][0],
            offset,
            rir_id,
        )

    def __call__(
        self, clean: np.ndarray, uid: str, epoch: int
    ) -> Tuple[np.ndarray, np.ndarray]:
        """(noisy, SE reference), both (T,) float32: :meth:`mix_utt`."""
        mixture = self.mix_utt(clean, uid, epoch)
        return mixture.noisy, mixture.reference


def build_mixer(conf: Optional[Dict], fs: int, default_seed: int) -> DynamicMixer:
    """The mixer of a ``dynamic_mixing`` config section; errors name the key.

    Args:
        conf: The section: ``noise_scp`` and ``snr_range`` (required), ``rir_scp``,
            ``rir_prob``, ``rir_reference``, ``early_ms``, ``seed`` (default
            ``default_seed``), ``cache_mb``.
        fs: The run's sampling rate.
        default_seed: The run's ``--seed``.
    """
    if not isinstance(conf, dict):
        raise MeritInputError(
            f"{OPTION}: expected a mapping of {sorted(KEYS)}, got {conf!r}"
        )
    unknown = sorted(set(conf) - set(KEYS))
    if unknown:
        raise MeritInputError(
            f"{OPTION}: unknown key '{unknown[0]}' (known: {sorted(KEYS)})"
        )
    full = {k: conf.get(k, default) for k, (_, default) in KEYS.items()}
    for key, (required, _) in KEYS.items():
        if required and conf.get(key) is None:
            raise MeritInputError(f"{OPTION}.{key} is required")
    for key in ("noise_scp", "rir_scp"):
        if full[key] is not None and not isinstance(full[key], str):
            raise MeritInputError(f"{OPTION}.{key}: expected a path, got {full[key]!r}")
    snr = full["snr_range"]
    if isinstance(snr, (int, float)) and not isinstance(snr, bool):
        snr = [snr, snr]
    if not isinstance(snr, (list, tuple)) or len(snr) != 2:
        raise MeritInputError(f"{OPTION}.snr_range: expected [lo, hi], got {snr!r}")
    for value in snr:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MeritInputError(
                f"{OPTION}.snr_range: expected two numbers of dB, got {snr!r}"
            )
    rir_prob = _number(full, "rir_prob", 0.0, 1.0)
    early_ms = _number(full, "early_ms", 0.0)
    cache_mb = _number(full, "cache_mb", 0.0)
    seed = default_seed if full["seed"] is None else full["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise MeritInputError(f"{OPTION}.seed: expected an integer, got {seed!r}")
    if not isinstance(full["rir_reference"], str):
        raise MeritInputError(
            f"{OPTION}.rir_reference: expected one of {list(REFERENCES)}, "
            f"got {full['rir_reference']!r}"
        )
    return DynamicMixer(
        noise_scp=full["noise_scp"],
        snr_range=[float(v) for v in snr],
        fs=fs,
        rir_scp=full["rir_scp"],
        rir_prob=rir_prob,
        rir_reference=full["rir_reference"],
        early_ms=early_ms,
        seed=seed,
        cache_mb=cache_mb,
    )
