#!/usr/bin/env python3
"""Recipe stage 1: CREMA-D -> Kaldi-style data directories, split by actor.

    python local/crema_d_data.py --corpus_dir /path/to/CREMA-D --outdir data \
        --classes 4 [--seed 0 --dev_ratio 0.1 --test_ratio 0.2 | --split_file FILE]

The corpus (facts from the CREMA-D repository's README.md and VideoDemographics.csv,
github.com/CheyneyComputerScience/CREMA-D, checked against its file listing; the
audio format as the audb conversion (github.com/audeering/crema-d), TensorFlow
Datasets' ``crema_d`` builder and EmoBox's ``preprocess/scripts/cremad.py`` read
it):

  <corpus_dir>/AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav
                        7442 files, 16 kHz mono 16-bit PCM, about 1.3-5 s each
      actor     4 digits, 1001-1091 (91 actors: 48 male, 43 female)
      sentence  IEO TIE IOM IWW TAI MTI IWL ITH DFA ITS TSI WSI (12 sentences)
      emotion   ANG DIS FEA HAP NEU SAD (anger, disgust, fear, happy, neutral, sad)
      level     LO MD HI XX (low, medium, high, unspecified); in the release only
                IEO has LO/MD/HI, every other sentence (and NEU) is XX
  <corpus_dir>/VideoDemographics.csv (optional here)
      "ActorID","Age","Sex","Race","Ethnicity"; Sex is Male or Female

Emotions are the actors' intended (acted) ones, from the file name; the crowd
ratings (processedResults/) are not used. Class codes follow the MSP-Podcast
recipe's (and CREMA-D's own vote letters A D F H N S):

  ANG -> A, SAD -> S, HAP -> H, FEA -> F, DIS -> D, NEU -> N
  --classes 4: A S H N (FEA and DIS excluded, counted in ``excluded``)
  --classes 6: A S H F D N (MSP-Podcast's 8-class order without U and C)

Split (speaker-independent): every actor that has audio goes to exactly one of
train, dev and test. With ``--split_file`` (lines ``actor<TAB>train|dev|test``)
the split is read: it must name every actor with audio, only those, and give each
set at least one actor. Otherwise it is drawn from ``--seed``: round(N *
--test_ratio) actors (at least 1) for test, round(N * --dev_ratio) (at least 1) for
dev, the rest for train; with the demographics file the actors of each Sex are
shuffled apart and taken in turn, so every set has both sexes in the corpus's
proportion (within one actor). Either way the split is written to
``<outdir>/actor_split.txt`` (``actor<TAB>set``, by actor), which ``--split_file``
reads back to reproduce it.

Each set directory gets

  wav.scp       utt -> absolute wav path (utt = file name without ``.wav``)
  utt2spk       utt -> actor
  utt2gender    utt -> Sex of VideoDemographics.csv (only when the file is there;
                without it none is written and one of an earlier run is removed)
  emotion       utt -> class code
  excluded      "utt reason" for each file left out: the class code (D, F with 4
                classes), or why its audio is unusable: ``empty`` (zero bytes or
                no samples), ``unreadable`` (soundfile cannot read it), ``silent``
                (every sample zero), ``no_audio`` (documented in the README as
                having no audio: 1076_MTI_SAD_XX.wav, 82,260 bytes in the release,
                so not empty; several loaders skip it)

and ``<outdir>/emotion_list`` holds the class codes in the model's output order.
Every file is opened and read (the corpus is about 600 MB); files with unusable
audio are excluded, counted and named in a warning, never dropped silently. A file
at another rate or with more channels is kept (stage 3 resamples and downmixes),
with a warning. A ``.wav`` name outside the pattern or with a sentence, emotion or
level code the corpus does not have is an error naming the file; hidden files
(``._*`` copies) and files not ending in ``.wav`` are ignored with a warning.
"""

import argparse
import csv
import logging
import math
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import soundfile

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.cli import entry_point
from espnet2_merit.utils.datadir import atomic_write_text, write_kaldi

PROG = "crema_d_data.py"
AUDIO_DIR = "AudioWAV"
DEMOGRAPHICS_FILE = "VideoDemographics.csv"
DEMOGRAPHICS_HEADER = ("ActorID", "Age", "Sex", "Race", "Ethnicity")
SPLIT_FILE = "actor_split.txt"
FS = 16000  # the release's sampling rate
ACTORS = range(1001, 1092)  # 1001-1091
SENTENCES = (
    "IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI",
)  # fmt: skip
# CREMA-D emotion code -> class code (MSP-Podcast's letters).
EMOTIONS = {"ANG": "A", "SAD": "S", "HAP": "H", "FEA": "F", "DIS": "D", "NEU": "N"}
LEVELS = ("LO", "MD", "HI", "XX")
CLASS_SETS = {4: ("A", "S", "H", "N"), 6: ("A", "S", "H", "F", "D", "N")}
SETS = ("train", "dev", "test")
# Documented in the release's README.md as having no audio (not empty on disk).
KNOWN_NO_AUDIO = {"1076_MTI_SAD_XX": "no_audio"}
NAME_RE = re.compile(r"(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})\.wav")
MAX_LISTED = 5  # files named in a warning
logger = logging.getLogger(PROG)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Prepare CREMA-D data directories (recipe stage 1)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--corpus_dir",
        type=Path,
        required=True,
        help=f"CREMA-D root holding {AUDIO_DIR}/ (and {DEMOGRAPHICS_FILE})",
    )
    parser.add_argument("--outdir", type=Path, default=Path("data"))
    parser.add_argument(
        "--classes",
        type=int,
        choices=sorted(CLASS_SETS),
        default=4,
        help="4: A S H N (FEA, DIS excluded); 6: A S H F D N",
    )
    parser.add_argument(
        "--demographics",
        type=Path,
        default=None,
        help=f"Actor table; default <corpus_dir>/{DEMOGRAPHICS_FILE} if present "
        "(gives utt2gender and a sex-balanced split)",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the split")
    parser.add_argument(
        "--dev_ratio", type=float, default=0.1, help="Share of the actors in dev"
    )
    parser.add_argument(
        "--test_ratio", type=float, default=0.2, help="Share of the actors in test"
    )
    parser.add_argument(
        "--split_file",
        type=Path,
        default=None,
        help="Read the actor split (actor<TAB>train|dev|test lines, as written to "
        f"<outdir>/{SPLIT_FILE}) instead of drawing it",
    )
    return parser


class Clip(NamedTuple):
    """One wav of AudioWAV, its name parsed."""

    utt: str  # file name without .wav
    path: Path  # absolute
    actor: str
    sentence: str
    emotion: str  # CREMA-D code (ANG, ...)
    level: str


def parse_name(path: Path) -> Clip:
    """The fields of a CREMA-D wav name; an error names the file."""
    m = NAME_RE.fullmatch(path.name)
    if m is None:
        raise MeritInputError(
            f"{path}: not a CREMA-D file name "
            "<actor>_<sentence>_<emotion>_<level>.wav (e.g. 1001_DFA_ANG_XX.wav)"
        )
    actor, sentence, emotion, level = m.groups()
    if int(actor) not in ACTORS:
        raise MeritInputError(
            f"{path}: actor {actor} is outside CREMA-D's {ACTORS[0]}-{ACTORS[-1]}"
        )
    if sentence not in SENTENCES:
        raise MeritInputError(
            f"{path}: unknown sentence code {sentence!r} (one of {' '.join(SENTENCES)})"
        )
    if emotion not in EMOTIONS:
        raise MeritInputError(
            f"{path}: unknown emotion code {emotion!r} (one of {' '.join(EMOTIONS)})"
        )
    if level not in LEVELS:
        raise MeritInputError(
            f"{path}: unknown emotion level code {level!r} (one of {' '.join(LEVELS)})"
        )
    return Clip(path.name[: -len(".wav")], path, actor, sentence, emotion, level)


def _listed(names: Sequence[str]) -> str:
    more = f" (and {len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else ""
    return ", ".join(names[:MAX_LISTED]) + more


def scan(corpus_dir: Path) -> List[Clip]:
    """The wavs of ``<corpus_dir>/AudioWAV``, by name."""
    if not corpus_dir.is_dir():
        raise MeritInputError(f"--corpus_dir {corpus_dir}: no such directory")
    audio_dir = (corpus_dir / AUDIO_DIR).resolve()
    if not audio_dir.is_dir():
        raise MeritInputError(
            f"{corpus_dir / AUDIO_DIR}: no such directory (expected CREMA-D's "
            f"{AUDIO_DIR}/ under --corpus_dir)"
        )
    clips, ignored = [], []
    for path in sorted(audio_dir.iterdir()):
        if path.name.startswith(".") or not path.name.endswith(".wav"):
            ignored.append(path.name)
        elif path.is_dir():
            ignored.append(path.name + "/")
        else:
            clips.append(parse_name(path))
    if ignored:
        logger.warning(
            f"{audio_dir}: ignored {len(ignored)} entries that are not .wav files "
            f"(or are hidden): {_listed(ignored)}"
        )
    if not clips:
        raise MeritInputError(f"{audio_dir}: no .wav files")
    return clips


def read_demographics(csv_path: Path) -> Dict[str, str]:
    """ActorID -> Sex of VideoDemographics.csv (header checked; further columns
    allowed)."""
    sex: Dict[str, str] = {}
    lines: Dict[str, int] = {}
    with open(csv_path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        names = [h.strip() for h in next(reader, None) or []]
        missing = [h for h in DEMOGRAPHICS_HEADER if h not in names]
        if missing:
            raise MeritInputError(
                f"{csv_path}: header {','.join(names) or '(empty file)'} lacks "
                f"{','.join(missing)}; expected {','.join(DEMOGRAPHICS_HEADER)}"
            )
        i_actor, i_sex = names.index("ActorID"), names.index("Sex")
        for fields in reader:
            line = reader.line_num
            if not any(x.strip() for x in fields):
                continue
            if len(fields) != len(names):
                raise MeritInputError(
                    f"{csv_path}:{line}: {len(fields)} fields, the header has "
                    f"{len(names)}"
                )
            actor, value = fields[i_actor].strip(), fields[i_sex].strip()
            if not re.fullmatch(r"\d{4}", actor):
                raise MeritInputError(
                    f"{csv_path}:{line}: ActorID {actor!r} is not a 4-digit actor id"
                )
            if actor in lines:
                raise MeritInputError(
                    f"{csv_path}:{line}: ActorID {actor} repeats line {lines[actor]}"
                )
            if not value or any(c.isspace() for c in value):
                raise MeritInputError(
                    f"{csv_path}:{line}: Sex {value!r} is empty or contains white "
                    "space"
                )
            lines[actor] = line
            sex[actor] = value
    if not sex:
        raise MeritInputError(f"{csv_path}: no rows")
    return sex


def load_demographics(
    corpus_dir: Path, given: Optional[Path], actors: Sequence[str]
) -> Optional[Dict[str, str]]:
    """Actor -> Sex for every actor with audio, or None without the file."""
    csv_path = given if given is not None else corpus_dir / DEMOGRAPHICS_FILE
    if not csv_path.is_file():
        if given is not None:
            raise MeritInputError(f"--demographics {csv_path}: no such file")
        logger.info(
            f"{csv_path}: no such file, so no utt2gender and a split not balanced "
            "by sex"
        )
        return None
    sex = read_demographics(csv_path)
    unlisted = [a for a in actors if a not in sex]
    if unlisted:
        raise MeritInputError(
            f"{csv_path}: no row for {len(unlisted)} actors with audio in "
            f"{AUDIO_DIR}/: {_listed(unlisted)}"
        )
    extra = sorted(set(sex) - set(actors))
    if extra:
        logger.info(
            f"{csv_path}: {len(extra)} actors have no audio (ignored): "
            + _listed(extra)
        )
    return {a: sex[a] for a in actors}


def draw_split(
    actors: Sequence[str],
    seed: int,
    dev_ratio: float,
    test_ratio: float,
    sex: Optional[Dict[str, str]] = None,
) -> Dict[str, str]:
    """Actor -> set, drawn from ``seed`` (see the module docstring)."""
    for name, r in (("--dev_ratio", dev_ratio), ("--test_ratio", test_ratio)):
        if not 0 < r < 1:
            raise MeritInputError(f"{name} {r}: expected a share in (0, 1)")
    n = len(actors)
    n_test = max(1, math.floor(n * test_ratio + 0.5))
    n_dev = max(1, math.floor(n * dev_ratio + 0.5))
    if n - n_test - n_dev < 1:
        raise MeritInputError(
            f"{n} actors: {n_test} for test and {n_dev} for dev (--test_ratio "
            f"{test_ratio}, --dev_ratio {dev_ratio}) leave none for train"
        )
    rng = np.random.default_rng(seed)
    groups: Dict[str, List[str]] = {}
    for a in sorted(actors):
        groups.setdefault(sex[a] if sex else "all", []).append(a)
    pools = []
    for key in sorted(groups):
        pool = groups[key]
        pools.append([pool[i] for i in rng.permutation(len(pool))])
    # Take the sexes in turn, largest share first: every prefix is balanced.
    order: List[str] = []
    taken = [0] * len(pools)
    while len(order) < n:
        k = min(
            (i for i in range(len(pools)) if taken[i] < len(pools[i])),
            key=lambda i: ((taken[i] + 0.5) / len(pools[i]), i),
        )
        order.append(pools[k][taken[k]])
        taken[k] += 1
    split = {a: "test" for a in order[:n_test]}
    split.update({a: "dev" for a in order[n_test : n_test + n_dev]})
    split.update({a: "train" for a in order[n_test + n_dev :]})
    return split


def read_split(path: Path, actors: Sequence[str]) -> Dict[str, str]:
    """Actor -> set of a split file; every actor with audio exactly once."""
    if not path.is_file():
        raise MeritInputError(f"--split_file {path}: no such file")
    split: Dict[str, str] = {}
    lines: Dict[str, int] = {}
    for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = text.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in SETS:
            raise MeritInputError(
                f"{path}:{line}: {text!r}: expected 'actor<TAB>set' with set one of "
                f"{', '.join(SETS)}"
            )
        actor, name = fields
        if actor in lines:
            raise MeritInputError(
                f"{path}:{line}: actor {actor} repeats line {lines[actor]}"
            )
        lines[actor] = line
        split[actor] = name
    known = set(actors)
    unknown = [a for a in split if a not in known]
    if unknown:
        raise MeritInputError(
            f"{path}: {len(unknown)} actors have no audio in {AUDIO_DIR}/: "
            + ", ".join(f"{a} (line {lines[a]})" for a in unknown[:MAX_LISTED])
            + (
                f" (and {len(unknown) - MAX_LISTED} more)"
                if len(unknown) > MAX_LISTED
                else ""
            )
        )
    missing = [a for a in actors if a not in split]
    if missing:
        raise MeritInputError(
            f"{path}: {len(missing)} actors with audio are missing: " + _listed(missing)
        )
    empty = [s for s in SETS if s not in split.values()]
    if empty:
        raise MeritInputError(f"{path}: no actor in {', '.join(empty)}")
    return split


class Audio(NamedTuple):
    """What reading a file found."""

    problem: Optional[str]  # None, "empty", "unreadable" or "silent"
    fs: int = 0
    channels: int = 0


def check_audio(path: Path) -> Audio:
    """Open and read one wav: why it is unusable, if it is."""
    try:
        if path.stat().st_size == 0:
            return Audio("empty")
        info = soundfile.info(str(path))
        if info.frames == 0:
            return Audio("empty", info.samplerate, info.channels)
        wav, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # a broken link, any libsndfile failure
        logger.debug(f"{path}: {e}")
        return Audio("unreadable")
    if wav.size == 0:
        return Audio("empty", info.samplerate, info.channels)
    if not np.any(wav):
        return Audio("silent", info.samplerate, info.channels)
    return Audio(None, info.samplerate, info.channels)


def unusable(clips: Sequence[Clip]) -> Dict[str, str]:
    """utt -> reason for the clips whose audio is unusable (logged)."""
    bad: Dict[str, str] = {}
    formats: Counter = Counter()
    for c in clips:
        if c.utt in KNOWN_NO_AUDIO:
            bad[c.utt] = KNOWN_NO_AUDIO[c.utt]
            continue
        audio = check_audio(c.path)
        if audio.problem is not None:
            bad[c.utt] = audio.problem
        elif (audio.fs, audio.channels) != (FS, 1):
            formats[f"{audio.fs} Hz x {audio.channels}"] += 1
    if bad:
        counts = Counter(bad.values())
        logger.warning(
            f"excluded {len(bad)} of {len(clips)} files whose audio is unusable ("
            + ", ".join(f"{r} {n}" for r, n in sorted(counts.items()))
            + f"), listed in <set>/excluded: {_listed(sorted(bad))}"
        )
    if formats:
        logger.warning(
            f"{sum(formats.values())} files are not {FS} Hz mono like the release "
            "(stage 3 resamples them): "
            + ", ".join(f"{k} {n}" for k, n in sorted(formats.items()))
        )
    return bad


def format_split(split: Dict[str, str]) -> str:
    return "".join(f"{a}\t{split[a]}\n" for a in sorted(split))


def prepare(
    corpus_dir: Path,
    outdir: Path,
    classes: int = 4,
    seed: int = 0,
    dev_ratio: float = 0.1,
    test_ratio: float = 0.2,
    split_file: Optional[Path] = None,
    demographics: Optional[Path] = None,
) -> Dict[str, Dict[str, int]]:
    """Write ``<outdir>/{train,dev,test}``, ``emotion_list`` and
    ``actor_split.txt``.

    Returns:
        Set -> {"actors": n, class code or "excluded:<reason>": count}.
    """
    if classes not in CLASS_SETS:
        raise MeritInputError(f"--classes {classes}: expected 4 or 6")
    class_set = CLASS_SETS[classes]
    clips = scan(corpus_dir)
    actors = sorted({c.actor for c in clips})
    sex = load_demographics(corpus_dir, demographics, actors)
    if split_file is not None:
        split = read_split(split_file, actors)
        logger.info(f"actor split read from {split_file} (--seed and ratios unused)")
    else:
        split = draw_split(actors, seed, dev_ratio, test_ratio, sex)
    bad = unusable(clips)

    summary: Dict[str, Dict[str, int]] = {}
    for name in SETS:
        in_set = [c for c in clips if split[c.actor] == name]
        reasons = {}
        for c in in_set:
            code = EMOTIONS[c.emotion]
            if c.utt in bad:
                reasons[c.utt] = bad[c.utt]
            elif code not in class_set:
                reasons[c.utt] = code
        kept = [c for c in in_set if c.utt not in reasons]
        if not kept:
            raise MeritInputError(
                f"{corpus_dir / AUDIO_DIR}: set {name} has no usable file of the "
                f"{classes} classes ({' '.join(class_set)})"
            )
        d = outdir / name
        write_kaldi(d / "wav.scp", {c.utt: str(c.path) for c in kept})
        write_kaldi(d / "utt2spk", {c.utt: c.actor for c in kept})
        if sex is not None:
            write_kaldi(d / "utt2gender", {c.utt: sex[c.actor] for c in kept})
        else:  # one from an earlier run would not match this corpus
            (d / "utt2gender").unlink(missing_ok=True)
        write_kaldi(d / "emotion", {c.utt: EMOTIONS[c.emotion] for c in kept})
        write_kaldi(d / "excluded", reasons)
        labels = Counter(EMOTIONS[c.emotion] for c in kept)
        excluded = Counter(reasons.values())
        counts = {"actors": len({c.actor for c in in_set})}
        counts.update({c: labels.get(c, 0) for c in class_set})
        counts.update({f"excluded:{r}": n for r, n in sorted(excluded.items())})
        summary[name] = counts
        if reasons:
            logger.info(
                f"{name}: excluded {len(reasons)} of {len(in_set)} files: "
                + ", ".join(f"{r} {n}" for r, n in sorted(excluded.items()))
            )
    atomic_write_text(outdir / "emotion_list", "\n".join(class_set) + "\n")
    atomic_write_text(outdir / SPLIT_FILE, format_split(split))
    return summary


def format_summary(summary: Dict[str, Dict[str, int]], class_set: Sequence[str]):
    """A text table: set x actors, class counts, excluded files and total kept."""
    cols = ["actors", *class_set, "excluded", "total"]
    lines = [f"{'set':<8}" + "".join(f"{c:>9}" for c in cols)]
    for name, counts in summary.items():
        excluded = sum(n for k, n in counts.items() if k.startswith("excluded:"))
        kept = [counts[c] for c in class_set]
        cells = [counts["actors"], *kept, excluded, sum(kept)]
        lines.append(f"{name:<8}" + "".join(f"{x:>9}" for x in cells))
    return "\n".join(lines)


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point(PROG):
        summary = prepare(
            args.corpus_dir,
            args.outdir,
            classes=args.classes,
            seed=args.seed,
            dev_ratio=args.dev_ratio,
            test_ratio=args.test_ratio,
            split_file=args.split_file,
            demographics=args.demographics,
        )
    print(format_summary(summary, CLASS_SETS[args.classes]))
    logger.info(
        f"wrote {', '.join(str(args.outdir / s) for s in summary)} and "
        f"{args.outdir / SPLIT_FILE}"
    )


if __name__ == "__main__":
    main()
