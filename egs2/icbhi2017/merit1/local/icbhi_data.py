#!/usr/bin/env python3
"""Recipe stage 1: ICBHI 2017 respiratory sounds -> Kaldi-style data directories
of respiratory cycles.

    python local/icbhi_data.py --corpus_dir /path/to/ICBHI --outdir data \
        [--split_file FILE] [--demographics FILE] [--fs 16000] \
        [--pad_sec 0 | --fixed_sec 8 --fixed_pad repeat|zero] \
        [--dev_ratio 0.2 --seed 0 | --dev_patients FILE]

The corpus (the ICBHI 2017 Respiratory Sound Database: Rocha et al. 2019, "An open
access database for the evaluation of respiratory sound classification
algorithms", Physiol. Meas. 40(3) 035001, and the challenge page
bhichallenge.med.auth.gr/ICBHI_2017_Challenge (counts, naming, locations, modes,
devices); file formats and the release's quirks as public loaders on GitHub read
and document them: microsoft/RespireNet utils.py (annotation columns Start End
Crackles Wheezes, tab-separated; the 4 classes), the icbhi_util.py of the
Patch-Mix / AST ICBHI loaders (16 kHz, 8 s windows, repeat padding), pandas
readers of the split and demographic files (tab-separated, no header), and loader
notes on the naming errata, the sampling rates per device and the split's shared
patients):

  <corpus_dir>/ICBHI_final_database/<patient>_<rec>_<location>_<mode>_<device>.wav
      920 recordings (10-90 s) of 126 patients, 5.5 h, 6898 respiratory cycles
      patient   101-226
      rec       recording index, e.g. 1b1, 2b4, 1p2
      location  Tc (trachea), Al Ar (anterior left/right), Pl Pr (posterior),
                Ll Lr (lateral)
      mode      sc (sequential / single channel), mc (simultaneous / multichannel)
      device    AKGC417L (AKG C417L microphone), LittC2SE (3M Littmann Classic II
                SE), Litt3200 (3M Littmann 3200), Meditron (WelchAllyn Meditron
                Master Elite)
      Sampling rates are 4000 Hz (Litt3200, most Meditron), 10000 Hz (some
      Meditron) and 44100 Hz (AKGC417L, LittC2SE): 824 of the 920 are 44.1 kHz.
  <corpus_dir>/ICBHI_final_database/<same stem>.txt  one line per cycle,
      ``start<TAB>end<TAB>crackles<TAB>wheezes`` (seconds; 0/1 flags)
  <corpus_dir>/ICBHI_challenge_train_test.txt  the official split, one line
      ``<recording stem><TAB>train|test`` per recording (60/40 by patient; but
      patients 156 and 218 have recordings on both sides: test then shares them
      with train, see below). Default of --split_file.
  <corpus_dir>/ICBHI_Challenge_demographic_information.txt  (optional) one line
      ``patient<TAB>age<TAB>sex<TAB>adult BMI<TAB>child weight<TAB>child height``
      per patient, no header, ``NA`` where missing; sex M or F.

Both metadata files are also looked for inside ICBHI_final_database/. Other files
there (the release's filename_format.txt, filename_differences.txt, ...) are
ignored with a warning. The recording stem of the split file and the audio agree
for all recordings but one in the release: 226_1b1_Pl_sc is listed with device
Meditron while its audio is named LittC2SE. So a listed stem without audio is
paired, with a warning, with the one unlisted recording that differs from it only
in the device; any other listed stem without audio, any recording with audio that
the split file does not list, a repeated stem or a set other than train/test is an
error naming the split file (and line).
Older copies of the release (the Kaggle one) name 91 AKGC417L / LittC2SE recordings
Meditron (their filename_differences.txt lists the corrected names); the device is
only reported here (cycles.tsv), so such a copy reads the same, with its own names.

Classes (one per cycle, from its two flags; the literature's 4-class task):

  crackles wheezes  class
         0       0  N  normal
         1       0  C  crackle
         0       1  W  wheeze
         1       1  B  both

The release counts 3642 N, 1864 C, 886 W, 506 B (6898); the official test set has
2756 cycles. The class is written to a file named ``emotion``, and the class list
to ``<outdir>/emotion_list`` (N C W B, the classifier's output order): the stage
script and the classifier read the file of that name whatever the classes are, so
"emotion" here means the respiratory class. N is the negative class of the ICBHI
score (specificity); C W B are the positive ones (sensitivity).

Utterances are cycles: cycle k (k = 1, 2, ... in the order of the annotation file,
blank lines skipped) of recording R is ``R_c<kkk>`` (three digits, e.g.
101_1b1_Al_sc_Meditron_c001). Each recording is read once, averaged to mono and
resampled to --fs with scipy.signal.resample_poly (polyphase, Kaiser window; the
stage script's rate is 16 kHz, that of the SSL frontends and of the AST-based
ICBHI literature; RespireNet used 4 kHz, the lowest native rate. A 4 kHz
recording holds nothing above 2 kHz whatever --fs is, which a classifier can read
as the device). Cycle boundaries are then rounded to samples at --fs, and

  default        the cycle, start to end, widened by --pad_sec on both sides (but
                 not beyond the recording: the window is clipped to it)
  --fixed_sec X  that window cut or filled to exactly X s: a longer one keeps its
                 first X s; a shorter one is repeated end to end and cut
                 (--fixed_pad repeat: what RespireNet and the Patch-Mix / AST
                 ICBHI loaders do, 8 s in both; they also fade out the last
                 1/16 s, not done here) or centred in zeros (--fixed_pad zero)

is written to ``<outdir>/cycle_wav/<set>/<utt>.wav`` (16-bit PCM, or 32-bit float
where resampling overshoots the 16-bit range). A cycle line that is not 4 fields,
has a non-number or negative time, a flag other than 0/1, end <= start, or an end
beyond the recording's length (by more than one native sample plus
--max_overrun_sec) is an error naming file:line; so is a recording's audio that
cannot be read or is empty, or a file name outside the pattern above.

Sets: test is the official test set. dev is a patient-disjoint share of the
official train set: round(N * --dev_ratio) (at least 1) of the N patients all of
whose recordings are in the official train set, drawn from --seed, or the
patients of --dev_patients (one per line); train is the rest of the official
train set. The dev patients are written to ``<outdir>/dev_patients.txt``, which
--dev_patients reads back. Train and dev never share a patient, nor do dev and
test; train and test share the patients the official split puts on both sides
(warned about, and never drawn for dev).

Each set directory gets

  wav.scp     utt -> absolute path of the cycle's wav
  utt2spk     utt -> patient
  utt2gender  utt -> sex of the demographic file (M, F; NA or a patient without a
              row -> Unknown, with a warning); without the file none is written
              and one of an earlier run is removed
  emotion     utt -> class code (N C W B)

and ``<outdir>/cycles.tsv`` lists every cycle with its recording, times, flags,
class, device, location, mode and native rate (for analyses by device; not read by
the stage script).
"""

import argparse
import logging
import math
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

import numpy as np
import soundfile
from scipy.signal import resample_poly

from espnet2_merit.errors import MeritInputError
from espnet2_merit.recipe.dev_split import draw_dev, read_dev_list
from espnet2_merit.utils.cli import entry_point
from espnet2_merit.utils.datadir import (
    PCM16_MAX,
    atomic_write_text,
    write_audio,
    write_kaldi,
)

PROG = "icbhi_data.py"
AUDIO_DIR = "ICBHI_final_database"
SPLIT_FILE = "ICBHI_challenge_train_test.txt"
DEMOGRAPHICS_FILE = "ICBHI_Challenge_demographic_information.txt"
DEV_PATIENTS_FILE = "dev_patients.txt"
# what a dev list may name (messages)
POOL = "the official train patients (all of whose recordings are in the train set)"
CYCLES_FILE = "cycles.tsv"
CYCLE_WAV_DIR = "cycle_wav"
PATIENTS = range(101, 227)  # 101-226
LOCATIONS = ("Tc", "Al", "Ar", "Pl", "Pr", "Ll", "Lr")
MODES = ("sc", "mc")
DEVICES = ("AKGC417L", "LittC2SE", "Litt3200", "Meditron")
NATIVE_RATES = (4000, 10000, 44100)
# (crackles, wheezes) -> class code; CLASSES is the model's output order.
CLASS_OF = {("0", "0"): "N", ("1", "0"): "C", ("0", "1"): "W", ("1", "1"): "B"}
CLASSES = ("N", "C", "W", "B")
OFFICIAL_SETS = ("train", "test")
SETS = ("train", "dev", "test")
FIXED_PADS = ("repeat", "zero")
NAME_RE = re.compile(r"(\d{3})_([0-9a-z]+)_([A-Za-z]{2})_([a-z]{2})_([A-Za-z0-9]+)")
SEXES = {"M": "M", "F": "F", "NA": "Unknown"}
UNKNOWN_SEX = "Unknown"
MAX_LISTED = 5  # names in a message
logger = logging.getLogger(PROG)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Prepare ICBHI 2017 respiratory-cycle data directories "
        "(recipe stage 1)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--corpus_dir",
        type=Path,
        required=True,
        help=f"ICBHI root holding {AUDIO_DIR}/ (and {SPLIT_FILE})",
    )
    parser.add_argument("--outdir", type=Path, default=Path("data"))
    parser.add_argument(
        "--split_file",
        type=Path,
        default=None,
        help=f"Official split (<stem><TAB>train|test); default <corpus_dir>/"
        f"{SPLIT_FILE} (or inside {AUDIO_DIR}/)",
    )
    parser.add_argument(
        "--demographics",
        type=Path,
        default=None,
        help=f"Patient table; default <corpus_dir>/{DEMOGRAPHICS_FILE} if present "
        "(gives utt2gender)",
    )
    parser.add_argument(
        "--fs", type=int, default=16000, help="Rate of the written cycles (Hz)"
    )
    parser.add_argument(
        "--pad_sec",
        type=float,
        default=0.0,
        help="Seconds added before and after each cycle (clipped to the recording)",
    )
    parser.add_argument(
        "--fixed_sec",
        type=float,
        default=None,
        help="Cut or fill every cycle to this many seconds (e.g. 8, the "
        "literature's); default: the cycle's own length",
    )
    parser.add_argument(
        "--fixed_pad",
        choices=FIXED_PADS,
        default="repeat",
        help="How --fixed_sec fills a shorter cycle: repeat it, or centre it in "
        "zeros",
    )
    parser.add_argument(
        "--max_overrun_sec",
        type=float,
        default=0.0,
        help="Tolerated overrun of a cycle's end beyond its recording (clipped), "
        "besides one native sample",
    )
    parser.add_argument(
        "--dev_ratio",
        type=float,
        default=0.2,
        help="Share of the official train patients held out as dev",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the dev draw")
    parser.add_argument(
        "--dev_patients",
        type=Path,
        default=None,
        help=f"Read the dev patients (one per line, as written to <outdir>/"
        f"{DEV_PATIENTS_FILE}) instead of drawing them",
    )
    return parser


class Recording(NamedTuple):
    """One wav of ICBHI_final_database, its name parsed."""

    stem: str
    wav: Path  # absolute
    txt: Path  # the annotation beside it
    patient: str
    index: str
    location: str
    mode: str
    device: str


class Cycle(NamedTuple):
    """One line of an annotation file."""

    number: int  # 1-based, blank lines skipped
    line: int  # line of the annotation file
    start: float
    end: float
    crackles: str  # "0" or "1"
    wheezes: str
    label: str  # class code


def _listed(names: Sequence[str]) -> str:
    more = f" (and {len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else ""
    return ", ".join(names[:MAX_LISTED]) + more


def parse_stem(path: Path) -> Tuple[str, str, str, str, str]:
    """(patient, rec, location, mode, device) of a recording's file name; an error
    names the file."""
    m = NAME_RE.fullmatch(path.stem)
    if m is None:
        raise MeritInputError(
            f"{path}: not an ICBHI recording name "
            "<patient>_<rec>_<location>_<mode>_<device>.wav "
            "(e.g. 101_1b1_Al_sc_Meditron.wav)"
        )
    patient, rec, location, mode, device = m.groups()
    if int(patient) not in PATIENTS:
        raise MeritInputError(
            f"{path}: patient {patient} is outside ICBHI's "
            f"{PATIENTS[0]}-{PATIENTS[-1]}"
        )
    for what, value, known in (
        ("chest location", location, LOCATIONS),
        ("acquisition mode", mode, MODES),
        ("device", device, DEVICES),
    ):
        if value not in known:
            raise MeritInputError(
                f"{path}: unknown {what} {value!r} (one of {' '.join(known)})"
            )
    return patient, rec, location, mode, device


def scan(corpus_dir: Path) -> List[Recording]:
    """The recordings of ``<corpus_dir>/ICBHI_final_database``, by name; each wav
    needs its annotation file."""
    if not corpus_dir.is_dir():
        raise MeritInputError(f"--corpus_dir {corpus_dir}: no such directory")
    audio_dir = (corpus_dir / AUDIO_DIR).resolve()
    if not audio_dir.is_dir():
        raise MeritInputError(
            f"{corpus_dir / AUDIO_DIR}: no such directory (expected ICBHI's "
            f"{AUDIO_DIR}/ under --corpus_dir)"
        )
    recordings, ignored = [], []
    entries = sorted(audio_dir.iterdir())
    wav_stems = {p.stem for p in entries if p.suffix == ".wav"}
    for path in entries:
        if path.name.startswith("."):
            ignored.append(path.name)
        elif path.suffix == ".wav" and not path.is_dir():
            txt = path.with_suffix(".txt")
            if not txt.is_file():
                raise MeritInputError(
                    f"{path}: no annotation file {txt.name} beside it"
                )
            fields = parse_stem(path)
            recordings.append(Recording(path.stem, path, txt, *fields))
        elif not (path.suffix == ".txt" and path.stem in wav_stems):
            ignored.append(path.name + ("/" if path.is_dir() else ""))
    if ignored:
        logger.warning(
            f"{audio_dir}: ignored {len(ignored)} entries that are not recordings "
            f"or their annotations: {_listed(ignored)}"
        )
    if not recordings:
        raise MeritInputError(f"{audio_dir}: no .wav files")
    return recordings


def read_cycles(txt: Path) -> List[Cycle]:
    """The cycles of an annotation file; a malformed line is an error naming
    file:line (the recording's length is checked when its audio is read)."""
    cycles: List[Cycle] = []
    for line, text in enumerate(txt.read_text(encoding="utf-8").splitlines(), 1):
        fields = text.split()
        if not fields:
            continue
        where = f"{txt}:{line}"
        if len(fields) != 4:
            raise MeritInputError(
                f"{where}: {text.strip()!r}: expected 4 fields "
                "'start<TAB>end<TAB>crackles<TAB>wheezes', got "
                f"{len(fields)}"
            )
        try:
            start, end = float(fields[0]), float(fields[1])
        except ValueError:
            raise MeritInputError(
                f"{where}: {text.strip()!r}: start and end must be numbers (s)"
            ) from None
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0:
            raise MeritInputError(
                f"{where}: start {fields[0]} and end {fields[1]} must be finite, "
                "start >= 0"
            )
        flags = (fields[2], fields[3])
        if flags not in CLASS_OF:
            raise MeritInputError(
                f"{where}: crackles {fields[2]!r} and wheezes {fields[3]!r}: "
                "expected flags 0 or 1"
            )
        if end <= start:
            raise MeritInputError(
                f"{where}: end {fields[1]} is not after start {fields[0]}"
            )
        cycles.append(Cycle(len(cycles) + 1, line, start, end, *flags, CLASS_OF[flags]))
    return cycles


def find_metadata(corpus_dir: Path, name: str) -> Path:
    """``<corpus_dir>/<name>``, or the one inside the audio directory."""
    for path in (corpus_dir / name, corpus_dir / AUDIO_DIR / name):
        if path.is_file():
            return path
    return corpus_dir / name


def read_split(path: Path, recordings: Sequence[Recording]) -> Dict[str, str]:
    """Recording stem -> train/test of the official split file (see the module
    docstring for the one device-name difference that is paired)."""
    if not path.is_file():
        raise MeritInputError(f"--split_file {path}: no such file")
    listed: Dict[str, Tuple[str, int]] = {}
    for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = text.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in OFFICIAL_SETS:
            raise MeritInputError(
                f"{path}:{line}: {text.strip()!r}: expected "
                "'<recording stem><TAB>train|test'"
            )
        stem, name = fields
        if stem in listed:
            raise MeritInputError(
                f"{path}:{line}: {stem} repeats line {listed[stem][1]}"
            )
        listed[stem] = (name, line)
    if not listed:
        raise MeritInputError(f"{path}: no recordings listed")
    stems = {r.stem for r in recordings}
    split = {s: name for s, (name, _) in listed.items() if s in stems}
    orphans = [s for s in listed if s not in stems]
    unlisted = [r.stem for r in recordings if r.stem not in listed]

    def key(stem: str) -> str:  # the stem without its device
        return stem.rsplit("_", 1)[0]

    paired = []
    for stem in list(orphans):
        same = [u for u in unlisted if key(u) == key(stem)]
        if len(same) == 1 and [o for o in orphans if key(o) == key(stem)] == [stem]:
            name, line = listed[stem]
            split[same[0]] = name
            paired.append(f"{stem} (line {line}) -> {same[0]}.wav")
            orphans.remove(stem)
            unlisted.remove(same[0])
    if paired:
        logger.warning(
            f"{path}: {len(paired)} listed recordings have no audio of that name "
            "but one whose name differs only in the device (the release's naming "
            f"difference), used instead: {_listed(paired)}"
        )
    if orphans:
        raise MeritInputError(
            f"{path}: {len(orphans)} listed recordings have no audio in "
            f"{AUDIO_DIR}/: " + _listed([f"{s} (line {listed[s][1]})" for s in orphans])
        )
    if unlisted:
        raise MeritInputError(
            f"{path}: {len(unlisted)} recordings with audio in {AUDIO_DIR}/ are "
            f"not listed: {_listed(unlisted)}"
        )
    empty = [s for s in OFFICIAL_SETS if s not in split.values()]
    if empty:
        raise MeritInputError(f"{path}: no recording in {', '.join(empty)}")
    return split


def read_demographics(path: Path) -> Dict[str, str]:
    """Patient -> M, F or Unknown (NA) of the demographic file."""
    sex: Dict[str, str] = {}
    lines: Dict[str, int] = {}
    for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = text.split()
        if not fields:
            continue
        if len(fields) < 3 or not fields[0].isdigit():
            raise MeritInputError(
                f"{path}:{line}: {text.strip()!r}: expected 'patient<TAB>age<TAB>"
                "sex<TAB>adult BMI<TAB>child weight<TAB>child height'"
            )
        patient, value = fields[0], fields[2]
        if value not in SEXES:
            raise MeritInputError(
                f"{path}:{line}: sex {value!r} of patient {patient}: expected "
                f"{', '.join(SEXES)}"
            )
        if patient in lines:
            raise MeritInputError(
                f"{path}:{line}: patient {patient} repeats line {lines[patient]}"
            )
        lines[patient] = line
        sex[patient] = SEXES[value]
    if not sex:
        raise MeritInputError(f"{path}: no rows")
    return sex


def load_demographics(
    corpus_dir: Path, given: Optional[Path], patients: Sequence[str]
) -> Optional[Dict[str, str]]:
    """Patient -> sex for every patient with audio, or None without the file."""
    path = given if given is not None else find_metadata(corpus_dir, DEMOGRAPHICS_FILE)
    if not path.is_file():
        if given is not None:
            raise MeritInputError(f"--demographics {path}: no such file")
        logger.info(f"{path}: no such file, so no utt2gender")
        return None
    sex = read_demographics(path)
    unlisted = [p for p in patients if p not in sex]
    if unlisted:
        logger.warning(
            f"{path}: no row for {len(unlisted)} patients with audio (their sex is "
            f"{UNKNOWN_SEX}): {_listed(unlisted)}"
        )
    unknown = [p for p in patients if sex.get(p) == UNKNOWN_SEX]
    if unknown:
        logger.info(f"{path}: sex NA ({UNKNOWN_SEX}) for patients {_listed(unknown)}")
    return {p: sex.get(p, UNKNOWN_SEX) for p in patients}


def load_audio(rec: Recording) -> Tuple[np.ndarray, int, int]:
    """(mono float64 samples, rate, channels) of a recording; unreadable or empty
    audio is an error naming the file."""
    try:
        wav, fs = soundfile.read(str(rec.wav), dtype="float64", always_2d=True)
    except Exception as e:  # libsndfile's messages do not name the file
        raise MeritInputError(f"{rec.wav}: cannot read audio: {e}") from None
    if wav.size == 0:
        raise MeritInputError(f"{rec.wav}: no samples")
    return wav.mean(axis=1), fs, wav.shape[1]


def resample(wav: np.ndarray, fs_in: int, fs_out: int) -> np.ndarray:
    """Polyphase resampling (scipy.signal.resample_poly)."""
    if fs_in == fs_out:
        return wav
    g = math.gcd(fs_in, fs_out)
    return resample_poly(wav, fs_out // g, fs_in // g)


def fit_length(seg: np.ndarray, n: int, how: str) -> np.ndarray:
    """``seg`` cut to its first n samples, or filled to n: repeated end to end
    (``repeat``) or centred in zeros (``zero``)."""
    if len(seg) >= n:
        return seg[:n]
    if how == "repeat":
        return np.tile(seg, -(-n // len(seg)))[:n]
    out = np.zeros(n, dtype=seg.dtype)
    left = (n - len(seg)) // 2
    out[left : left + len(seg)] = seg
    return out


def cut_cycle(
    wav: np.ndarray,
    fs: int,
    cycle: Cycle,
    pad_sec: float = 0.0,
    fixed_sec: Optional[float] = None,
    fixed_pad: str = "repeat",
) -> np.ndarray:
    """The cycle's samples of ``wav`` (at ``fs``), see the module docstring."""
    begin = max(0, round((cycle.start - pad_sec) * fs))
    stop = min(len(wav), round((cycle.end + pad_sec) * fs))
    seg = wav[begin:stop]
    if len(seg) == 0:
        raise ValueError("empty cycle")
    if fixed_sec is not None:
        seg = fit_length(seg, round(fixed_sec * fs), fixed_pad)
    return seg


class Row(NamedTuple):
    """One written cycle."""

    utt: str
    set: str
    rec: Recording
    cycle: Cycle
    native_fs: int
    samples: int


def prepare(
    corpus_dir: Path,
    outdir: Path,
    split_file: Optional[Path] = None,
    demographics: Optional[Path] = None,
    fs: int = 16000,
    pad_sec: float = 0.0,
    fixed_sec: Optional[float] = None,
    fixed_pad: str = "repeat",
    max_overrun_sec: float = 0.0,
    dev_ratio: float = 0.2,
    seed: int = 0,
    dev_patients: Optional[Path] = None,
) -> Dict[str, Dict[str, int]]:
    """Write ``<outdir>/{train,dev,test}``, their cycle wavs, ``emotion_list``,
    ``dev_patients.txt`` and ``cycles.tsv``.

    Returns:
        Set -> {"patients": n, "recordings": n, class code: cycles}.
    """
    if fs <= 0:
        raise MeritInputError(f"--fs {fs}: expected a positive rate")
    if pad_sec < 0 or max_overrun_sec < 0:
        raise MeritInputError("--pad_sec and --max_overrun_sec must be >= 0")
    if fixed_sec is not None and round(fixed_sec * fs) < 1:
        raise MeritInputError(f"--fixed_sec {fixed_sec}: expected a positive length")
    if fixed_pad not in FIXED_PADS:
        raise MeritInputError(f"--fixed_pad {fixed_pad}: one of {FIXED_PADS}")
    recordings = scan(corpus_dir)
    if split_file is None:
        split_file = find_metadata(corpus_dir, SPLIT_FILE)
    official = read_split(split_file, recordings)
    patients = sorted({r.patient for r in recordings})
    sides: Dict[str, Set[str]] = {}
    for r in recordings:
        sides.setdefault(r.patient, set()).add(official[r.stem])
    shared = [p for p in patients if len(sides[p]) == 2]
    if shared:
        logger.warning(
            f"{split_file}: {len(shared)} patients have recordings in both the "
            "official train and test sets (kept so; never drawn for dev): "
            + _listed(shared)
        )
    candidates = [p for p in patients if sides[p] == {"train"}]
    if not candidates:
        raise MeritInputError(f"{split_file}: no patient is only in the train set")
    if dev_patients is not None:
        dev = set(
            read_dev_list(dev_patients, candidates, "--dev_patients", "patient", POOL)
        )
        logger.info(
            f"dev patients read from {dev_patients} (--seed, --dev_ratio unused)"
        )
    else:
        dev = set(draw_dev(candidates, dev_ratio, seed, "official train patients"))
    sex = load_demographics(corpus_dir, demographics, patients)

    def set_of(r: Recording) -> str:
        if official[r.stem] == "test":
            return "test"
        return "dev" if r.patient in dev else "train"

    wav_root = (outdir / CYCLE_WAV_DIR).resolve()
    tmp_dirs = {name: wav_root / f"{name}.tmp" for name in SETS}
    for d in tmp_dirs.values():
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    rows: List[Row] = []
    rates: Counter = Counter()
    multichannel, floats, overruns, no_cycles = [], 0, [], []
    for rec in recordings:
        cycles = read_cycles(rec.txt)
        if not cycles:
            no_cycles.append(rec.stem)
            continue
        wav, native_fs, channels = load_audio(rec)
        rates[native_fs] += 1
        if channels > 1:
            multichannel.append(rec.stem)
        duration = len(wav) / native_fs
        slack = 1.0 / native_fs + max_overrun_sec
        for c in cycles:
            if c.end > duration + slack:
                raise MeritInputError(
                    f"{rec.txt}:{c.line}: cycle end {c.end:g} s is beyond the "
                    f"recording's length {duration:g} s ({rec.wav.name}, "
                    f"{len(wav)} samples at {native_fs} Hz)"
                )
            if c.end > duration:
                overruns.append(f"{rec.txt.name}:{c.line}")
        wav = resample(wav, native_fs, fs)
        name = set_of(rec)
        for c in cycles:
            try:
                seg = cut_cycle(wav, fs, c, pad_sec, fixed_sec, fixed_pad)
            except ValueError:
                raise MeritInputError(
                    f"{rec.txt}:{c.line}: cycle {c.start:g}-{c.end:g} s is shorter "
                    f"than one sample at {fs} Hz"
                ) from None
            utt = f"{rec.stem}_c{c.number:03d}"
            peak = float(np.abs(seg).max())
            subtype = "PCM_16" if peak <= PCM16_MAX else "FLOAT"
            floats += subtype == "FLOAT"
            write_audio(tmp_dirs[name] / f"{utt}.wav", seg, fs, subtype)
            rows.append(Row(utt, name, rec, c, native_fs, len(seg)))
    if no_cycles:
        logger.warning(
            f"{len(no_cycles)} recordings have no cycles in their annotation file "
            f"(nothing written for them): {_listed(no_cycles)}"
        )
    if overruns:
        logger.warning(
            f"{len(overruns)} cycles end after their recording (within "
            f"--max_overrun_sec; clipped): {_listed(overruns)}"
        )
    odd = {r: n for r, n in rates.items() if r not in NATIVE_RATES}
    if odd:
        logger.warning(
            f"{sum(odd.values())} recordings at rates the release does not have "
            f"({', '.join(f'{r} Hz x {n}' for r, n in sorted(odd.items()))})"
        )
    if multichannel:
        logger.warning(
            f"{len(multichannel)} recordings have several channels (averaged): "
            + _listed(multichannel)
        )
    if floats:
        logger.info(f"{floats} cycles written as float (16 bits would clip)")
    logger.info(
        "native rates: " + ", ".join(f"{r} Hz x {n}" for r, n in sorted(rates.items()))
    )

    by_set = {name: [r for r in rows if r.set == name] for name in SETS}
    empty = [name for name in SETS if not by_set[name]]
    if empty:
        raise MeritInputError(f"{corpus_dir}: no cycles in {', '.join(empty)}")
    summary: Dict[str, Dict[str, int]] = {}
    for name in SETS:
        final = wav_root / name
        if final.exists():
            shutil.rmtree(final)
        tmp_dirs[name].rename(final)
        kept = by_set[name]
        d = outdir / name
        write_kaldi(d / "wav.scp", {r.utt: str(final / f"{r.utt}.wav") for r in kept})
        write_kaldi(d / "utt2spk", {r.utt: r.rec.patient for r in kept})
        if sex is not None:
            write_kaldi(d / "utt2gender", {r.utt: sex[r.rec.patient] for r in kept})
        else:  # one from an earlier run would not match this corpus
            (d / "utt2gender").unlink(missing_ok=True)
        write_kaldi(d / "emotion", {r.utt: r.cycle.label for r in kept})
        labels = Counter(r.cycle.label for r in kept)
        counts = {
            "patients": len({r.rec.patient for r in kept}),
            "recordings": len({r.rec.stem for r in kept}),
        }
        counts.update({c: labels.get(c, 0) for c in CLASSES})
        summary[name] = counts
    atomic_write_text(outdir / "emotion_list", "\n".join(CLASSES) + "\n")
    atomic_write_text(
        outdir / DEV_PATIENTS_FILE, "".join(f"{p}\n" for p in sorted(dev))
    )
    header = (
        "utt set recording patient cycle start end crackles wheezes class device "
        "location mode native_fs samples"
    )
    lines = [header.replace(" ", "\t")]
    for r in sorted(rows, key=lambda r: r.utt):
        c, rec = r.cycle, r.rec
        cells = (
            r.utt, r.set, rec.stem, rec.patient, c.number, f"{c.start:g}",
            f"{c.end:g}", c.crackles, c.wheezes, c.label, rec.device,
            rec.location, rec.mode, r.native_fs, r.samples,
        )  # fmt: skip
        lines.append("\t".join(str(x) for x in cells))
    atomic_write_text(outdir / CYCLES_FILE, "\n".join(lines) + "\n")
    return summary


def format_summary(summary: Dict[str, Dict[str, int]]) -> str:
    """A text table: set x patients, recordings, cycles per class and in all."""
    cols = ["patients", "recs", *CLASSES, "total"]
    lines = [f"{'set':<8}" + "".join(f"{c:>9}" for c in cols)]
    for name, counts in summary.items():
        kept = [counts[c] for c in CLASSES]
        cells = [counts["patients"], counts["recordings"], *kept, sum(kept)]
        lines.append(f"{name:<8}" + "".join(f"{x:>9}" for x in cells))
    return "\n".join(lines)


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point(PROG):
        summary = prepare(
            args.corpus_dir,
            args.outdir,
            split_file=args.split_file,
            demographics=args.demographics,
            fs=args.fs,
            pad_sec=args.pad_sec,
            fixed_sec=args.fixed_sec,
            fixed_pad=args.fixed_pad,
            max_overrun_sec=args.max_overrun_sec,
            dev_ratio=args.dev_ratio,
            seed=args.seed,
            dev_patients=args.dev_patients,
        )
    print(format_summary(summary))
    logger.info(
        f"wrote {', '.join(str(args.outdir / s) for s in summary)}, "
        f"{args.outdir / DEV_PATIENTS_FILE} and {args.outdir / CYCLES_FILE}"
    )


if __name__ == "__main__":
    main()
