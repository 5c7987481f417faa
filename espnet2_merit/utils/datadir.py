"""Kaldi-style data directories: reading and atomically writing "<key> <value>"
files, and reading the audio they list, with errors that name the file and line."""

import hashlib
import os
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

import numpy as np
import soundfile

from espnet2_merit.errors import MeritInputError

PathLike = Union[str, Path]

# Per-utterance text files that travel with the audio through stages 2-4.
KEYED_TEXT_FILES = (
    "emotion",
    "emotion_attr",
    "emotion_votes",
    "utt2spk",
    "utt2gender",
    "utt2snr",
    "utt2noise",
    "utt2rir",
    "text",
)
# Sound lists, noisy input first.
SOUND_SCPS = ("wav.scp", "spk1.scp")
# A decode directory's manifest: its tasks' targets and text files
# (``espnet2_merit.inference.decode_dir`` writes it; merging and scoring read it).
MANIFEST = "outputs.json"


# Data names (the keys of a batch) -> (file in a data directory, ESPnet loader
# type). The recipe passes each file a directory has; a name missing here is
# stored in a text file of its own name.
DATA_FILES: Dict[str, Tuple[str, str]] = {
    "speech": ("wav.scp", "sound"),
    "speech_ref1": ("spk1.scp", "sound"),
    "emotion": ("emotion", "text"),
    "emotion_attr": ("emotion_attr", "text"),
    "emotion_votes": ("emotion_votes", "text"),
    "gender": ("utt2gender", "text"),
    # Transcripts ("<utt> <words...>"): read only by a config with a text_frontend
    # (MeritTask leaves the file out of the data loader otherwise).
    "text": ("text", "text"),
}


def data_file(name: str) -> Tuple[str, str]:
    """(file name in a data directory, ESPnet loader type) of a data name."""
    return DATA_FILES.get(name, (name, "text"))


def data_options(
    split: str, directory: PathLike, names: Optional[Iterable[str]] = None
) -> List[str]:
    """ESPnet's ``--<split>_data_path_and_name_and_type`` options for the data
    files of ``directory`` (only ``names`` if given; each must exist then)."""
    directory = Path(directory)
    options = []
    for name in names or DATA_FILES:
        file, kind = data_file(name)
        if names is None and not (directory / file).is_file():
            continue
        if not (directory / file).is_file():
            raise MeritInputError(f"{directory / file}: no such file (data '{name}')")
        options += [
            f"--{split}_data_path_and_name_and_type",
            f"{directory / file},{name},{kind}",
        ]
    return options


def iter_kaldi(path: PathLike) -> Iterator[Tuple[int, str, str]]:
    """(line number, key, value) of each line of a "<key> <value>" file.

    Key and value are separated by any whitespace (spaces or tabs, as ESPnet's
    readers accept); the value may hold spaces. Blank lines are skipped, a line
    without a value or a repeated key is an error naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise MeritInputError(f"{path}: no such file")
    seen = set()
    with open(path, encoding="utf-8") as f:
        for num, line in enumerate(f, 1):
            parts = line.strip().split(maxsplit=1)
            if not parts:
                continue
            if len(parts) != 2:
                raise MeritInputError(
                    f"{path}:{num}: expected '<key> <value>', got {line.strip()!r}"
                )
            if parts[0] in seen:
                raise MeritInputError(f"{path}:{num}: key '{parts[0]}' repeated")
            seen.add(parts[0])
            yield num, parts[0], parts[1]


def read_kaldi(path: PathLike) -> Dict[str, str]:
    """A "<key> <value>" file as an insertion-ordered dict (see ``iter_kaldi``)."""
    return {key: value for _, key, value in iter_kaldi(path)}


def read_list(path: PathLike, what: str) -> List[str]:
    """Distinct entries, one per line (a class list); ``what`` names the option
    in errors. Empty lists, repeated entries and entries with spaces are errors."""
    path = Path(path)
    if not path.is_file():
        raise MeritInputError(f"{what}: no such file {path}")
    entries, seen = [], {}
    for num, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        entry = line.strip()
        if not entry:
            continue
        if len(entry.split()) != 1:
            raise MeritInputError(f"{path}:{num}: expected one name, got {entry!r}")
        if entry in seen:
            raise MeritInputError(
                f"{path}:{num}: '{entry}' repeated (first on line {seen[entry]})"
            )
        seen[entry] = num
        entries.append(entry)
    if not entries:
        raise MeritInputError(f"{what}: {path} is empty")
    return entries


def read_sound_scp(path: PathLike) -> Dict[str, str]:
    """A sound list (utt -> audio file); pipe commands are refused since the
    recipe's tools read files only."""
    table = read_kaldi(path)
    for key, value in table.items():
        if value.endswith("|"):
            raise MeritInputError(
                f"{path}: utterance '{key}' is a pipe command ({value!r}); this "
                "tool reads audio files only"
            )
        if os.sep in key or key in (".", ".."):
            raise MeritInputError(
                f"{path}: utterance id '{key}' cannot be used as a file name"
            )
    return table


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through ``path.tmp`` and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_kaldi(path: PathLike, table: Union[Mapping[str, str], Iterable]) -> None:
    """Write "<key> <value>" lines sorted by key (atomically)."""
    items = table.items() if isinstance(table, Mapping) else table
    atomic_write_text(path, "".join(f"{k} {v}\n" for k, v in sorted(items)))


def file_sha256(path: PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    return file_digest(path, "sha256")


def file_digest(path: PathLike, algorithm: str) -> str:
    """Hex digest (``hashlib`` algorithm) of a file's bytes, read in blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_audio(path: str, what: str) -> Tuple[np.ndarray, int]:
    """(T, C) float64 samples and the sampling rate; ``what`` names the
    utterance (or noise) in the error when soundfile cannot read the file."""
    try:
        wav, fs = soundfile.read(path, dtype="float64", always_2d=True)
    except Exception as e:  # soundfile's messages do not say which utterance
        raise MeritInputError(f"{what}: cannot read audio '{path}': {e}") from None
    return wav, fs


def write_audio(path: PathLike, wav: np.ndarray, fs: int, subtype: str) -> None:
    """Write a mono wav (PCM_16 or FLOAT) atomically.

    PCM_16 is quantised here, ``round(x * 32768)`` (the inverse of soundfile's
    read scaling), and written as integers, so reading the file back gives exactly
    the quantised values; samples must lie in [-1, 32767/32768].
    """
    path = Path(path)
    if subtype == "PCM_16":
        data = quantize_pcm16(wav)
    elif subtype == "FLOAT":
        data = np.asarray(wav, dtype=np.float32)
    else:
        raise MeritInputError(f"unsupported subtype {subtype!r} (PCM_16 or FLOAT)")
    tmp = path.with_name(path.name + ".tmp")
    soundfile.write(tmp, data, fs, subtype=subtype, format="WAV")
    os.replace(tmp, path)


PCM16_MAX = 32767 / 32768  # the largest sample a PCM_16 file holds


def quantize_pcm16(wav: np.ndarray) -> np.ndarray:
    """(T,) float in [-1, PCM16_MAX] -> (T,) int16; out-of-range samples are an
    error (clipping would change the mixture's SNR without notice)."""
    q = np.round(np.asarray(wav, dtype=np.float64) * 32768.0)
    if q.size and (q.max() > 32767 or q.min() < -32768):
        raise MeritInputError(
            f"samples outside the 16-bit range (peak {np.abs(wav).max():.4f}): "
            "they would clip"
        )
    return q.astype(np.int16)
