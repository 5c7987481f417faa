#!/usr/bin/env python3
"""Recipe stage 1: MSP-Podcast -> Kaldi-style data directories.

    python local/msp_podcast_data.py --corpus_dir /path/to/MSP-PODCAST-Publish-1.11 \
        --outdir data --classes 4 [--splits Train,Development,Test1,Test2,Test3]

Reads ``<corpus_dir>/Labels/labels_consensus.csv`` (header
``FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set``; further columns
are ignored) and lists the audio ``<corpus_dir>/Audios/<FileName>``. Each requested
``Split_Set`` becomes a directory (Train -> train, Development -> dev, Test1 ->
test1, ...) with

  wav.scp       utt -> absolute wav path (utt = FileName without ``.wav``)
  utt2spk       utt -> SpkrID; ``Unknown`` (or empty) -> ``unk_<utt>``, so
                utterances of unknown talkers are never pooled as one speaker
  utt2gender    utt -> Gender as written in the CSV (empty -> ``Unknown``)
  emotion       utt -> class code (labelled splits only)
  emotion_attr  utt -> "arousal valence dominance" (EmoAct EmoVal EmoDom, 1-7)
  excluded      "utt code" for each row left out (code outside the class set,
                or ``none`` for an unlabelled row in a labelled split)

and ``<outdir>/emotion_list`` holds the class codes in the model's output order
(A S H N for 4 classes; A S H U F D C N for 8). Rows whose code is outside the class
set (O other, X no agreement, and U F D C with 4 classes) are excluded and counted
per split and code. A split none of whose rows has an EmoClass (Test3, whose labels
are withheld) is written without ``emotion``/``emotion_attr``. Only the existence of
the audio files is checked here (reading 100k headers is slow); stage 3 reads them.

When ``<corpus_dir>/Labels/labels_detailed.csv`` exists (the individual annotations:
format as read by public MSP-Podcast loaders; MSP-Podcast readme, release 1.12,
lists Labels/labels_detailed.csv as 'detailed individual annotations in CSV
format'), each labelled split also gets

  emotion_votes "utt A:3 N:1 O:1": the annotators' primary emotions counted per
                class code (codes in ``ALL_CODES`` order, only those voted for);
                ``-`` for an utterance without a counted vote. Same utterances,
                in the same order, as ``emotion``.

The file has one row per annotator and utterance, in one of two layouts:

  1.11 and later  ``FileName,EmoDetail`` with EmoDetail a quoted field
                  ``WORKER00014; Neutral; Concerned,Frustrated; A:3.0; V:4.0; D:4.0;``
                  (worker; primary; secondary emotions, possibly empty or absent
                  altogether; arousal, valence, dominance)
  1.6             ``FileName,Workers,EmoClass_Major,EmoClass_Second,EmoAct,EmoVal,
                  EmoDom`` (EmoClass_Major the primary emotion)

Primary emotions are words (``PRIMARY_CODES``: Angry -> A, ..., Neutral -> N);
``Other`` and every free-text ``Other-...`` variant count as O. A row with an empty
or absent primary is a missing vote: not counted, but counted in the log per split.
Rows naming a file that ``labels_consensus.csv`` does not list are counted in a
warning and ignored. Any other primary, a malformed row or an unknown header is an
error naming the file and line, so a change of format is caught. Without the file,
no ``emotion_votes`` is written (and one left by an earlier run is removed).

When ``<corpus_dir>/Transcripts/`` exists (one ``<FileName stem>.txt`` per
utterance, e.g. ``Transcripts/MSP-PODCAST_0001_0008.txt``, the layout public
MSP-Podcast loaders read), every split also gets

  text          utt -> its transcript on one line (whitespace and line breaks
                collapsed to single spaces), for the speech + text systems

An utterance without a transcript file, or with an empty one, is left out of
``text`` (logged: training with a text frontend then names it). Without the folder
no ``text`` is written (logged, and one left by an earlier run is removed).
"""

import argparse
import csv
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.cli import entry_point
from espnet2_merit.utils.datadir import atomic_write_text, write_kaldi

PROG = "msp_podcast_data.py"
LABEL_FILE = Path("Labels") / "labels_consensus.csv"
HEADER = (
    "FileName",
    "EmoClass",
    "EmoAct",
    "EmoVal",
    "EmoDom",
    "SpkrID",
    "Gender",
    "Split_Set",
)
ATTRIBUTE_COLUMNS = ("EmoAct", "EmoVal", "EmoDom")
ATTRIBUTE_RANGE = (1.0, 7.0)
# Split_Set value -> data directory name, in the corpus's order.
SPLITS = {
    "Train": "train",
    "Development": "dev",
    "Test1": "test1",
    "Test2": "test2",
    "Test3": "test3",
}
CLASS_SETS = {4: ("A", "S", "H", "N"), 8: ("A", "S", "H", "U", "F", "D", "C", "N")}
# Every EmoClass code of the corpus; O (other) and X (no agreement) are never used.
ALL_CODES = ("A", "S", "H", "U", "F", "D", "C", "N", "O", "X")
# Individual annotations (optional): one row per annotator and utterance.
DETAILED_FILE = Path("Labels") / "labels_detailed.csv"
TRANSCRIPTS_DIR = Path("Transcripts")  # <FileName stem>.txt per utterance
DETAILED_HEADERS = {
    "1.11": ("FileName", "EmoDetail"),
    "1.6": (
        "FileName",
        "Workers",
        "EmoClass_Major",
        "EmoClass_Second",
        "EmoAct",
        "EmoVal",
        "EmoDom",
    ),
}
# Primary emotion (as annotators chose it) -> EmoClass code; "Other..." -> O.
PRIMARY_CODES = {
    "Angry": "A",
    "Sad": "S",
    "Happy": "H",
    "Surprise": "U",
    "Fear": "F",
    "Disgust": "D",
    "Contempt": "C",
    "Neutral": "N",
}
OTHER_PREFIX, OTHER_CODE = "Other", "O"
NO_VOTES = "-"  # emotion_votes value of an utterance without a counted vote
UNKNOWN_SPEAKER = "Unknown"
UNLABELLED = "none"  # code written to ``excluded`` for a row without EmoClass
MAX_LISTED = 5  # files or utterances named in an error or warning
logger = logging.getLogger(PROG)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Prepare MSP-Podcast data directories (recipe stage 1)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--corpus_dir",
        type=Path,
        required=True,
        help="MSP-Podcast root holding Audios/ and Labels/labels_consensus.csv",
    )
    parser.add_argument("--outdir", type=Path, default=Path("data"))
    parser.add_argument(
        "--classes",
        type=int,
        choices=sorted(CLASS_SETS),
        default=4,
        help="4: A S H N (the paper); 8: A S H U F D C N (Odyssey 2024 challenge)",
    )
    parser.add_argument(
        "--splits",
        default=None,
        help="Comma-separated Split_Set values to prepare (of "
        f"{','.join(SPLITS)}); default: all of them that occur in the CSV",
    )
    return parser


class Row(NamedTuple):
    """One CSV row, checked."""

    line: int  # line number in the CSV
    utt: str
    path: Path  # absolute wav path
    code: Optional[str]  # EmoClass; None when empty (withheld)
    attrs: Optional[Tuple[float, float, float]]  # arousal, valence, dominance
    spk: str
    gender: str
    split: str  # Split_Set as written


def _attribute(csv_path: Path, line: int, field: str, text: str) -> float:
    lo, hi = ATTRIBUTE_RANGE
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not lo <= value <= hi:  # also rejects nan and inf
        raise MeritInputError(
            f"{csv_path}:{line}: {field} {text!r} is not a number in [{lo:g}, {hi:g}]"
        )
    return value


def _token(csv_path: Path, line: int, field: str, text: str) -> str:
    """A value written as one word of a Kaldi file."""
    if any(c.isspace() for c in text):
        raise MeritInputError(
            f"{csv_path}:{line}: {field} {text!r} contains white space"
        )
    return text


def read_labels(corpus_dir: Path) -> List[Row]:
    """The rows of the label file, checked field by field (file order)."""
    if not corpus_dir.is_dir():
        raise MeritInputError(f"--corpus_dir {corpus_dir}: no such directory")
    csv_path = corpus_dir / LABEL_FILE
    if not csv_path.is_file():
        raise MeritInputError(
            f"{csv_path}: no such file (expected MSP-Podcast's label file "
            f"{LABEL_FILE} under --corpus_dir)"
        )
    audio_dir = (corpus_dir / "Audios").resolve()
    rows: List[Row] = []
    seen: Dict[str, int] = {}
    # utf-8-sig: a byte-order mark would otherwise become part of "FileName".
    with open(csv_path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        names = [h.strip() for h in header or []]
        missing = [h for h in HEADER if h not in names]
        if missing:
            raise MeritInputError(
                f"{csv_path}: header {','.join(names) or '(empty file)'} lacks "
                f"{','.join(missing)}; expected {','.join(HEADER)} (further columns "
                "are allowed)"
            )
        col = {h: names.index(h) for h in HEADER}
        for fields in reader:
            line = reader.line_num
            if not any(x.strip() for x in fields):
                continue
            if len(fields) < len(names):
                # A row cut short (Test3's withheld labels) reads as empty fields.
                fields = fields + [""] * (len(names) - len(fields))
            elif len(fields) > len(names):
                raise MeritInputError(
                    f"{csv_path}:{line}: {len(fields)} fields, the header has "
                    f"{len(names)}"
                )
            v = {h: fields[i].strip() for h, i in col.items()}
            name = v["FileName"]
            utt = _utt_of(csv_path, line, name)
            if utt in seen:
                raise MeritInputError(
                    f"{csv_path}:{line}: FileName {name} repeats line {seen[utt]}"
                )
            seen[utt] = line
            code: Optional[str] = v["EmoClass"] or None
            if code is not None and code not in ALL_CODES:
                raise MeritInputError(
                    f"{csv_path}:{line}: EmoClass {code!r} is not an MSP-Podcast code "
                    f"(one of {' '.join(ALL_CODES)}, or empty when withheld)"
                )
            attrs = None
            given = [v[a] for a in ATTRIBUTE_COLUMNS]
            if code is not None or any(given):
                attrs = tuple(
                    _attribute(csv_path, line, a, t)
                    for a, t in zip(ATTRIBUTE_COLUMNS, given)
                )
            spk = _token(csv_path, line, "SpkrID", v["SpkrID"])
            if spk in ("", UNKNOWN_SPEAKER):
                spk = f"unk_{utt}"
            gender = _token(csv_path, line, "Gender", v["Gender"]) or "Unknown"
            rows.append(
                Row(
                    line,
                    utt,
                    audio_dir / name,
                    code,
                    attrs,
                    spk,
                    gender,
                    v["Split_Set"],
                )
            )
    if not rows:
        raise MeritInputError(f"{csv_path}: no rows")
    return rows


class Votes(NamedTuple):
    """The primary emotions of ``labels_detailed.csv``, per utterance."""

    counts: Dict[str, Counter]  # utt -> class code -> votes (every utt with a row)
    missing: Counter  # utt -> rows without a primary emotion (not counted)

    def rows(self, utt: str) -> int:
        """Annotator rows of ``utt``, counted votes and missing ones."""
        return sum(self.counts.get(utt, Counter()).values()) + self.missing[utt]


def primary_code(csv_path: Path, line: int, text: str) -> Optional[str]:
    """The class code of a primary emotion word; None when it is empty."""
    if not text:
        return None
    if text in PRIMARY_CODES:
        return PRIMARY_CODES[text]
    if text.startswith(OTHER_PREFIX):
        return OTHER_CODE
    raise MeritInputError(
        f"{csv_path}:{line}: primary emotion {text!r} is none of "
        f"{', '.join(PRIMARY_CODES)} and does not start with {OTHER_PREFIX!r}"
    )


def _detail_primary(csv_path: Path, line: int, detail: str) -> str:
    """The primary emotion of a 1.11 EmoDetail ``worker; primary; [secondary;]
    A:..; V:..; D:..;``: empty when the row has none."""
    parts = [p.strip() for p in detail.split(";")]
    at = next((i for i, p in enumerate(parts) if p.startswith("A:")), None)
    if at is None or not 1 <= at <= 3:
        raise MeritInputError(
            f"{csv_path}:{line}: EmoDetail {detail!r}: expected 'worker; primary; "
            "[secondary;] A:<arousal>; V:<valence>; D:<dominance>;'"
        )
    return parts[1] if at >= 2 else ""


def _utt_of(csv_path: Path, line: int, name: str) -> str:
    if not name.endswith(".wav") or "/" in name or name == ".wav":
        raise MeritInputError(
            f"{csv_path}:{line}: FileName {name!r}: expected a file name ending in "
            ".wav"
        )
    return _token(csv_path, line, "FileName", name[: -len(".wav")])


def read_votes(csv_path: Path) -> Votes:
    """Count the primary emotions of ``labels_detailed.csv`` (either layout of
    ``DETAILED_HEADERS``) per utterance and class code."""
    counts: Dict[str, Counter] = {}
    missing: Counter = Counter()
    with open(csv_path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        names = tuple(h.strip() for h in next(reader, None) or [])
        layout = next((k for k, h in DETAILED_HEADERS.items() if names == h), None)
        if layout is None:
            expected = "; ".join(
                f"{','.join(h)} ({k})" for k, h in DETAILED_HEADERS.items()
            )
            raise MeritInputError(
                f"{csv_path}: header {','.join(names) or '(empty file)'}: expected "
                f"one of MSP-Podcast's {expected}"
            )
        for fields in reader:
            line = reader.line_num
            if not any(x.strip() for x in fields):
                continue
            if len(fields) != len(names):
                raise MeritInputError(
                    f"{csv_path}:{line}: {len(fields)} fields, the header has "
                    f"{len(names)}"
                )
            utt = _utt_of(csv_path, line, fields[0].strip())
            if layout == "1.11":
                text = _detail_primary(csv_path, line, fields[1])
            else:
                text = fields[names.index("EmoClass_Major")].strip()
            code = primary_code(csv_path, line, text)
            votes = counts.setdefault(utt, Counter())
            if code is None:
                missing[utt] += 1
            else:
                votes[code] += 1
    return Votes(counts, missing)


def format_votes(votes: Counter) -> str:
    """``A:3 N:1 O:1`` (``ALL_CODES`` order, counts > 0), or ``-`` for none."""
    return " ".join(f"{c}:{votes[c]}" for c in ALL_CODES if votes[c] > 0) or NO_VOTES


def _listed(names: Sequence[str]) -> str:
    more = f" (and {len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else ""
    return ", ".join(names[:MAX_LISTED]) + more


def load_votes(corpus_dir: Path, rows: Sequence[Row]) -> Optional[Votes]:
    """The votes of ``labels_detailed.csv`` if the corpus has one, else None;
    warns of rows naming files the consensus file does not list."""
    csv_path = corpus_dir / DETAILED_FILE
    if not csv_path.is_file():
        logger.info(f"{csv_path}: no such file, so no emotion_votes")
        return None
    votes = read_votes(csv_path)
    known = {r.utt for r in rows}
    unknown = sorted(u for u in votes.counts if u not in known)
    if unknown:
        logger.warning(
            f"{csv_path}: {sum(votes.rows(u) for u in unknown)} rows name "
            f"{len(unknown)} files that {LABEL_FILE} does not list (ignored): "
            + _listed(unknown)
        )
    return votes


def load_transcripts(corpus_dir: Path) -> Optional[Dict[str, str]]:
    """utt -> transcript of ``<corpus_dir>/Transcripts/<utt>.txt`` (whitespace
    collapsed: a data-dir line holds one transcript), or None without the
    folder."""
    folder = corpus_dir / TRANSCRIPTS_DIR
    if not folder.is_dir():
        logger.info(f"{folder}: no such folder, so no text (transcripts)")
        return None
    texts = {}
    for path in sorted(folder.glob("*.txt")):
        try:
            words = path.read_text(encoding="utf-8").split()
        except UnicodeDecodeError as e:
            raise MeritInputError(f"{path}: not UTF-8 text ({e})") from None
        texts[path.stem] = " ".join(words)
    logger.info(f"{folder}: {len(texts)} transcripts")
    return texts


def write_text(d: Path, name: str, kept: Sequence[Row], texts: Dict[str, str]):
    """``<d>/text`` for the ``kept`` rows that have a non-empty transcript; logs
    the others."""
    write_kaldi(d / "text", {r.utt: texts[r.utt] for r in kept if texts.get(r.utt)})
    missing = [r.utt for r in kept if not texts.get(r.utt)]
    if missing:
        logger.warning(
            f"{name}: {len(missing)} of {len(kept)} utterances have no (or an "
            f"empty) transcript, left out of text: {_listed(missing)}"
        )


def write_votes(d: Path, name: str, kept: Sequence[Row], votes: Votes) -> None:
    """``<d>/emotion_votes`` for the ``kept`` rows of a labelled split; logs the
    missing votes and the utterances without any."""
    write_kaldi(
        d / "emotion_votes",
        {r.utt: format_votes(votes.counts.get(r.utt, Counter())) for r in kept},
    )
    n_rows = sum(votes.rows(r.utt) for r in kept)
    n_missing = sum(votes.missing[r.utt] for r in kept)
    no_rows = [r.utt for r in kept if r.utt not in votes.counts]
    no_votes = [
        r.utt
        for r in kept
        if r.utt in votes.counts and not sum(votes.counts[r.utt].values())
    ]
    logger.info(
        f"{name}: emotion_votes from {n_rows} annotator rows of {len(kept)} "
        f"utterances; {n_missing} rows with a missing vote (not counted)"
    )
    if no_votes:
        logger.warning(
            f"{name}: {len(no_votes)} utterances have only missing votes "
            f"(emotion_votes {NO_VOTES}): {_listed(no_votes)}"
        )
    if no_rows:
        logger.warning(
            f"{name}: {len(no_rows)} utterances have no row in {DETAILED_FILE} "
            f"(emotion_votes {NO_VOTES}): {_listed(no_rows)}"
        )


def check_audio(rows: Sequence[Row], csv_path: Path) -> None:
    """Every listed wav exists; the error names the first few missing ones."""
    missing = [r for r in rows if not r.path.is_file()]
    if missing:
        listed = "; ".join(f"line {r.line}: {r.path}" for r in missing[:MAX_LISTED])
        more = (
            f" (and {len(missing) - MAX_LISTED} more)"
            if len(missing) > MAX_LISTED
            else ""
        )
        raise MeritInputError(
            f"{csv_path}: {len(missing)} of {len(rows)} listed audio files are "
            f"missing: {listed}{more}"
        )


def _parse_splits(text: Optional[str], rows: Sequence[Row], csv_path: Path):
    present = Counter(r.split for r in rows)
    if text is None:
        splits = [s for s in SPLITS if s in present]
        if not splits:
            raise MeritInputError(
                f"{csv_path}: no row has a Split_Set of {', '.join(SPLITS)}"
            )
        return splits
    splits = [s.strip() for s in text.split(",") if s.strip()]
    for s in splits:
        if s not in SPLITS:
            raise MeritInputError(
                f"--splits: unknown split {s!r}; expected some of {','.join(SPLITS)}"
            )
        if s not in present:
            raise MeritInputError(
                f"--splits: {csv_path} has no row with Split_Set {s} (found: "
                + ", ".join(f"{k or '(empty)'} {n}" for k, n in present.items())
                + ")"
            )
    if not splits or len(set(splits)) != len(splits):
        raise MeritInputError(f"--splits {text!r}: expected distinct split names")
    return splits


def prepare(
    corpus_dir: Path,
    outdir: Path,
    classes: int = 4,
    splits: Optional[str] = None,
) -> Dict[str, Dict[str, int]]:
    """Write the data directories and ``emotion_list``.

    Args:
        corpus_dir: MSP-Podcast root.
        outdir: Where ``<split>/`` directories go.
        classes: 4 or 8 (see ``CLASS_SETS``).
        splits: Comma-separated Split_Set values; None: all present.

    Returns:
        Directory name -> {class code or "excluded:<code>" or "unlabelled": count}.
    """
    if classes not in CLASS_SETS:
        raise MeritInputError(f"--classes {classes}: expected 4 or 8")
    class_set = CLASS_SETS[classes]
    rows = read_labels(corpus_dir)
    csv_path = corpus_dir / LABEL_FILE
    wanted = _parse_splits(splits, rows, csv_path)
    selected = [r for r in rows if r.split in wanted]
    others = Counter(r.split or "(empty)" for r in rows if r.split not in wanted)
    if others:
        logger.info(
            "rows of splits not prepared: "
            + ", ".join(f"{k} {n}" for k, n in sorted(others.items()))
        )
    check_audio(selected, csv_path)
    votes = load_votes(corpus_dir, rows)
    texts = load_transcripts(corpus_dir)

    summary: Dict[str, Dict[str, int]] = {}
    for split in wanted:
        name = SPLITS[split]
        split_rows = [r for r in selected if r.split == split]
        labelled = any(r.code is not None for r in split_rows)
        kept = [r for r in split_rows if not labelled or r.code in class_set]
        dropped = [r for r in split_rows if labelled and r.code not in class_set]
        d = outdir / name
        write_kaldi(d / "wav.scp", {r.utt: str(r.path) for r in kept})
        write_kaldi(d / "utt2spk", {r.utt: r.spk for r in kept})
        write_kaldi(d / "utt2gender", {r.utt: r.gender for r in kept})
        write_kaldi(d / "excluded", {r.utt: r.code or UNLABELLED for r in dropped})
        if texts is not None:
            write_text(d, name, kept, texts)
        else:  # one from an earlier run would not match this corpus
            (d / "text").unlink(missing_ok=True)
        counts: Dict[str, int] = {}
        if labelled:
            if not kept:
                raise MeritInputError(
                    f"{csv_path}: split {split} has no row of the {classes} classes "
                    f"({' '.join(class_set)})"
                )
            write_kaldi(d / "emotion", {r.utt: r.code for r in kept})
            write_kaldi(
                d / "emotion_attr",
                {r.utt: " ".join(repr(a) for a in r.attrs) for r in kept},
            )
            if votes is not None:
                write_votes(d, name, kept, votes)
            else:  # one from an earlier run would not match this corpus
                (d / "emotion_votes").unlink(missing_ok=True)
            label_count = Counter(r.code for r in kept)
            counts.update({c: label_count.get(c, 0) for c in class_set})
            excluded = Counter(r.code or UNLABELLED for r in dropped)
            counts.update({f"excluded:{c}": n for c, n in sorted(excluded.items())})
            if dropped:
                logger.info(
                    f"{name}: excluded {len(dropped)} of {len(split_rows)} rows "
                    f"(codes outside {' '.join(class_set)}): "
                    + ", ".join(f"{c} {n}" for c, n in sorted(excluded.items()))
                )
            if excluded.get(UNLABELLED):
                logger.warning(
                    f"{name}: {excluded[UNLABELLED]} rows have no EmoClass although "
                    "the split is labelled; listed in excluded as 'none'"
                )
        else:
            # Stale label files from an earlier run would label the set wrongly.
            for stale in ("emotion", "emotion_attr", "emotion_votes"):
                (d / stale).unlink(missing_ok=True)
            counts["unlabelled"] = len(kept)
            logger.info(
                f"{name}: unlabelled split (no row has EmoClass): {len(kept)} "
                "utterances, written without emotion/emotion_attr"
            )
        summary[name] = counts
    atomic_write_text(outdir / "emotion_list", "\n".join(class_set) + "\n")
    return summary


def format_summary(summary: Dict[str, Dict[str, int]], class_set: Sequence[str]):
    """A text table: split x class counts, excluded rows and total kept."""
    cols = [*class_set, "excluded", "total"]
    lines = [f"{'split':<8}" + "".join(f"{c:>9}" for c in cols)]
    for name, counts in summary.items():
        excluded = sum(n for k, n in counts.items() if k.startswith("excluded:"))
        if "unlabelled" in counts:
            cells = ["-"] * len(class_set) + [0, counts["unlabelled"]]
        else:
            kept = [counts[c] for c in class_set]
            cells = [*kept, excluded, sum(kept)]
        lines.append(f"{name:<8}" + "".join(f"{x:>9}" for x in cells))
    return "\n".join(lines)


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point(PROG):
        summary = prepare(args.corpus_dir, args.outdir, args.classes, args.splits)
    print(format_summary(summary, CLASS_SETS[args.classes]))
    logger.info(f"wrote {', '.join(str(args.outdir / s) for s in summary)}")


if __name__ == "__main__":
    main()
