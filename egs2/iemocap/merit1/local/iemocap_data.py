#!/usr/bin/env python3
"""Recipe stage 1: IEMOCAP -> Kaldi-style data directories of one cross-validation
fold (leave one session out, the 4-class protocol).

    python local/iemocap_data.py --corpus_dir /path/to/IEMOCAP_full_release \
        --outdir data/fold1 --fold 1 [--dev_split session|speaker]

Corpus layout (IEMOCAP_full_release, as the release's README.txt describes it and as
torchaudio's ``torchaudio/datasets/iemocap.py``, s3prl's ``s3prl/corpus/iemocap.py``
and ESPnet's ``egs2/iemocap/asr1/local/data.sh`` read it):

  <corpus_dir>/Session{1..5}/sentences/wav/<dialog>/<utt>.wav    16 kHz mono
  <corpus_dir>/Session{1..5}/dialog/EmoEvaluation/<dialog>.txt   the labels

Dialogs are named ``Ses01F_impro01`` (improvisation 1 of session 1) or
``Ses01F_script01_1`` (a scripted one; some improvisations are split, e.g.
``Ses03M_impro05a``); the letter after the session number is the gender of the
actor who wore the motion-capture markers in that recording (README.txt). The
utterances of a dialog are ``<dialog>_<G><nnn>`` (``Ses01F_impro01_M000``), G the
gender of the actor speaking that turn. Each session has two actors, one female and
one male, so the speaker of an utterance is the session and G: ``Ses01F_impro01_M000``
is spoken by ``Ses01M``, the male actor of session 1, although the female actor wore
the markers. (A public per-utterance speaker list for IEMOCAP, enmwmak/Teaching's
``FYP/labels/emo_labels_cat_exc-as-hap.txt``, gives speaker 6 M to
``Ses01F_impro01_M000`` and speaker 1 F to ``Ses01F_impro01_F000``. torchaudio's and
s3prl's loaders name the *dialog* prefix ``Ses01F`` as "speaker", which is the marker
wearer, so their "speakers" mix both actors; this script does not.)

Each ``EmoEvaluation/<dialog>.txt`` (only the ``.txt`` files directly in that folder
are read, as torchaudio does; its sub-folders and hidden ``._*`` files are skipped)
holds a header line ``% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]`` and one
block per utterance: the utterance line, tab-separated,

  [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]

(start - end in seconds, utterance id, consensus category code, mean [valence,
activation, dominance] on a 1-5 scale), then the evaluators' lines
(``C-E2:<TAB>Neutral;<TAB>()`` categorical, ``A-E3:<TAB>val 3; act 2; dom  2;<TAB>()``
dimensional) and a blank line. The rule of torchaudio's loader decides which lines are
utterance lines: those that start with ``[``; every other line (the ``%`` header,
``C-``/``A-`` evaluator lines, blank lines) is skipped. A line starting with ``[``
that does not have the form above is an error naming the file and line, as are an
unknown category code, an utterance id that is not ``<dialog>_<F|M><digits>`` of the
file's dialog and session, an utterance listed twice (naming both places), and
utterances whose wav file is missing (the first few, each by file and line). Wav
files that no label line lists are counted in a warning and ignored.

Category codes (README.txt's categories; ESPnet's data.sh lists the codes):
neu neutral, hap happiness, exc excitement, sad sadness, ang anger, fru frustration,
sur surprise, fea fear, dis disgust, oth other, xxx no majority among the
evaluators. The common 4-class protocol (SUPERB's ER task: s3prl's
``iemocap_for_superb``; torchaudio's IEMOCAP dataset) keeps ang, hap, exc, sad, neu
and merges exc into hap, 5531 utterances in all (1103 ang, 1636 hap+exc, 1084 sad,
1708 neu). Class codes, those of the MSP-Podcast recipe, in ``emotion_list`` order:

  A  ang            S  sad            H  hap + exc      N  neu

Every other code (fru sur fea dis oth xxx) is excluded: listed with its code in the
set's ``excluded`` file and counted per set and code in the summary.

Folds (``--fold k``, 1-5, leave one session out): test = Session k (both its actors);
dev = a held-out part of the four other sessions, by ``--dev_split``:

  session  (default) the whole next session, k mod 5 + 1 (Session 1 for k = 5): the
           rule of s3prl's ``iemocap_for_superb`` (valid session = test session + 1,
           cyclically); train = the three remaining sessions (6 actors)
  speaker  one actor of that next session, the female one for odd k, the male one
           for even k (Ses02F, Ses03M, Ses04F, Ses05M, Ses01F for k = 1..5); train =
           the other 7 actors (more training data; dev a single speaker)

Both are deterministic and speaker-independent: no actor is in two of train, dev
and test. (SUPERB's own dev set, a random 20% of the training sessions'
utterances, is not: it shares speakers with train; ESPnet's ASR recipe uses the
``Ses04M_*`` dialogs, which hold both actors of session 4.) ``<outdir>`` gets

  train/ dev/ test/  wav.scp       utt -> absolute wav path
                     utt2spk       utt -> speaker (``Ses01F``, ``Ses01M``, ...)
                     utt2gender    utt -> Female / Male (the turn's G)
                     emotion       utt -> A S H N
                     emotion_attr  utt -> "arousal valence dominance": activation,
                                   valence, dominance of the bracket
                                   [valence, activation, dominance], 1-5 scale
                     excluded      "utt code" of each utterance left out
  emotion_list       A S H N, the classifier's output order
  fold               "fold=k dev_split=... test=... dev=... train=..." (the sessions
                     or speakers of each set)

Values of the bracket outside 1-5 are kept and counted in a warning. Only the
existence of the wav files is checked here; stage 3 reads them.
"""

import argparse
import logging
import math
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, NamedTuple, Sequence, Tuple

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.cli import entry_point
from espnet2_merit.utils.datadir import atomic_write_text, write_kaldi

PROG = "iemocap_data.py"
SESSIONS = (1, 2, 3, 4, 5)
LABEL_DIR = Path("dialog") / "EmoEvaluation"
WAV_DIR = Path("sentences") / "wav"
# Every category code of the corpus (EmoEvaluation files, consensus column).
ALL_CODES = tuple("neu hap exc sad ang fru sur fea dis oth xxx".split())
# The 4-class protocol: IEMOCAP code -> class code (exc merged into hap).
CLASS_MAP = {"ang": "A", "sad": "S", "hap": "H", "exc": "H", "neu": "N"}
CLASS_SET = ("A", "S", "H", "N")
ATTRIBUTE_RANGE = (1.0, 5.0)
DEV_SPLITS = ("session", "speaker")
SPLITS = ("train", "dev", "test")
GENDERS = {"F": "Female", "M": "Male"}
# An utterance line: "[start - end]", utterance id, code, "[V, A, D]" (tabs in the
# release; any white space is accepted between the fields).
UTT_LINE = re.compile(
    r"^\[\s*(?P<start>[^\]\s]+)\s*-\s*(?P<end>[^\]\s]+)\s*\]\s+(?P<utt>\S+)\s+"
    r"(?P<code>\S+)\s+\[(?P<vad>[^\]]*)\]\s*$"
)
UTT_FORMAT = "[<start> - <end>]<TAB><utterance id><TAB><code><TAB>[<V>, <A>, <D>]"
UTT_ID = re.compile(r"^Ses0(?P<session>[1-5])[FM]_.+_(?P<gender>[FM])\d+$")
MAX_LISTED = 5  # places named in an error or warning
logger = logging.getLogger(PROG)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Prepare one IEMOCAP cross-validation fold (recipe stage 1)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--corpus_dir",
        type=Path,
        required=True,
        help="IEMOCAP root (IEMOCAP_full_release) holding Session1..Session5",
    )
    parser.add_argument(
        "--outdir",
        type=Path,
        default=Path("data"),
        help="Where train/, dev/, test/ and emotion_list go (the recipe: data/fold<k>)",
    )
    parser.add_argument(
        "--fold",
        type=int,
        choices=SESSIONS,
        required=True,
        help="Leave-one-session-out fold: Session <fold> is the test set",
    )
    parser.add_argument(
        "--dev_split",
        choices=DEV_SPLITS,
        default="session",
        help="dev set: the next session (session), or one actor of it (speaker)",
    )
    return parser


class Utterance(NamedTuple):
    """One utterance line of an EmoEvaluation file, checked."""

    file: Path  # the EmoEvaluation file
    line: int  # its line number there
    utt: str
    session: int
    code: str  # IEMOCAP category code
    attrs: Tuple[float, float, float]  # arousal (activation), valence, dominance
    spk: str  # Ses0<session><F|M>
    gender: str  # Female / Male
    path: Path  # absolute wav path


def _number(file: Path, line: int, what: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise MeritInputError(
            f"{file}:{line}: malformed utterance line: {what} {text!r} is not a "
            f"number (expected {UTT_FORMAT})"
        )
    return value


def parse_line(file: Path, line: int, text: str, session: int, wav_dir: Path):
    """The ``Utterance`` of an utterance line (one starting with ``[``) of the
    EmoEvaluation file ``file`` of Session ``session``."""
    m = UTT_LINE.match(text)
    if m is None:
        raise MeritInputError(
            f"{file}:{line}: malformed utterance line {text.strip()!r}: expected "
            f"{UTT_FORMAT}"
        )
    for what in ("start", "end"):
        _number(file, line, f"{what} time", m[what])
    vad = [v.strip() for v in m["vad"].split(",")]
    if len(vad) != 3:
        raise MeritInputError(
            f"{file}:{line}: malformed utterance line: [{m['vad']}] has "
            f"{len(vad)} values, expected [valence, activation, dominance]"
        )
    valence, activation, dominance = (
        _number(file, line, name, v)
        for name, v in zip(("valence", "activation", "dominance"), vad)
    )
    utt, code, dialog = m["utt"], m["code"], file.stem
    if code not in ALL_CODES:
        raise MeritInputError(
            f"{file}:{line}: unknown category code {code!r} of {utt} (IEMOCAP's "
            f"codes: {' '.join(ALL_CODES)})"
        )
    uid = UTT_ID.match(utt)
    if uid is None or not utt.startswith(dialog + "_"):
        raise MeritInputError(
            f"{file}:{line}: utterance id {utt!r} is not {dialog}_<F|M><digits> "
            f"(an utterance of the file's dialog {dialog})"
        )
    if int(uid["session"]) != session:
        raise MeritInputError(
            f"{file}:{line}: utterance {utt} is not of Session{session}, whose "
            "EmoEvaluation folder lists it"
        )
    g = uid["gender"]
    return Utterance(
        file=file,
        line=line,
        utt=utt,
        session=session,
        code=code,
        attrs=(activation, valence, dominance),
        spk=f"Ses{session:02d}{g}",
        gender=GENDERS[g],
        path=wav_dir / dialog / f"{utt}.wav",
    )


def read_session(corpus_dir: Path, session: int) -> List[Utterance]:
    """The utterance lines of one session's EmoEvaluation files (sorted by file)."""
    session_dir = corpus_dir / f"Session{session}"
    label_dir = session_dir / LABEL_DIR
    if not label_dir.is_dir():
        raise MeritInputError(
            f"{label_dir}: no such directory (expected IEMOCAP's layout "
            f"Session{{1..5}}/{LABEL_DIR}/<dialog>.txt under --corpus_dir)"
        )
    wav_dir = (session_dir / WAV_DIR).resolve()
    files = sorted(
        p for p in label_dir.glob("*.txt") if p.is_file() and not p.name.startswith(".")
    )
    if not files:
        raise MeritInputError(f"{label_dir}: no <dialog>.txt label files")
    utterances = []
    for file in files:
        with open(file, encoding="utf-8", errors="replace") as f:
            for line, text in enumerate(f, 1):
                if text.startswith("["):
                    utterances.append(parse_line(file, line, text, session, wav_dir))
    return utterances


def read_corpus(corpus_dir: Path) -> List[Utterance]:
    """All labelled utterances of the five sessions; each listed once."""
    if not corpus_dir.is_dir():
        raise MeritInputError(f"--corpus_dir {corpus_dir}: no such directory")
    utterances: List[Utterance] = []
    seen: Dict[str, Utterance] = {}
    for session in SESSIONS:
        for u in read_session(corpus_dir, session):
            if u.utt in seen:
                first = seen[u.utt]
                raise MeritInputError(
                    f"{u.file}:{u.line}: utterance {u.utt} repeats "
                    f"{first.file}:{first.line}"
                )
            seen[u.utt] = u
            utterances.append(u)
    return utterances


def _listed(items: Sequence[str], sep: str = "; ") -> str:
    """The first ``MAX_LISTED`` items, and how many more there are."""
    more = len(items) - MAX_LISTED
    return sep.join(items[:MAX_LISTED]) + (f" (and {more} more)" if more > 0 else "")


def check_audio(corpus_dir: Path, utterances: Sequence[Utterance]) -> None:
    """Every labelled utterance has its wav (the error names the first few label
    lines without one); warns of wav files no label line lists."""
    missing = [u for u in utterances if not u.path.is_file()]
    if missing:
        places = [
            f"{u.file}:{u.line}: {u.utt} has no wav file {u.path}" for u in missing
        ]
        raise MeritInputError(
            f"{len(missing)} of {len(utterances)} labelled utterances have no wav "
            f"file: {_listed(places)}"
        )
    known = {u.utt for u in utterances}
    unlisted = sorted(
        p.stem
        for s in SESSIONS
        for p in (corpus_dir / f"Session{s}" / WAV_DIR).glob("*/*.wav")
        if not p.name.startswith(".") and p.stem not in known
    )
    if unlisted:
        logger.warning(
            f"{len(unlisted)} wav files are in no EmoEvaluation file (ignored): "
            + _listed(unlisted, ", ")
        )


def check_attributes(utterances: Sequence[Utterance]) -> None:
    """Warn of bracket values outside IEMOCAP's 1-5 scale (kept as they are)."""
    lo, hi = ATTRIBUTE_RANGE
    outside = [u for u in utterances if not all(lo <= a <= hi for a in u.attrs)]
    if outside:
        places = [f"{u.file}:{u.line}" for u in outside]
        logger.warning(
            f"{len(outside)} utterances have [V, A, D] values outside "
            f"[{lo:g}, {hi:g}] (kept): {_listed(places, ', ')}"
        )


def fold_speakers(fold: int, dev_split: str = "session") -> Dict[str, List[str]]:
    """Set name -> the speakers (``Ses0<s><F|M>``) of that set in ``fold``."""
    if fold not in SESSIONS:
        raise MeritInputError(f"--fold {fold}: expected one of 1-5")
    if dev_split not in DEV_SPLITS:
        raise MeritInputError(
            f"--dev_split {dev_split!r}: expected one of {', '.join(DEV_SPLITS)}"
        )
    dev_session = fold % len(SESSIONS) + 1
    speakers = [f"Ses{s:02d}{g}" for s in SESSIONS for g in GENDERS]
    test = [s for s in speakers if s.startswith(f"Ses{fold:02d}")]
    if dev_split == "session":
        dev = [s for s in speakers if s.startswith(f"Ses{dev_session:02d}")]
    else:
        dev = [f"Ses{dev_session:02d}{'F' if fold % 2 else 'M'}"]
    train = [s for s in speakers if s not in test and s not in dev]
    return {"train": train, "dev": dev, "test": test}


def _describe(speakers: Sequence[str]) -> str:
    """``Session2`` for both actors of a session, else the speakers."""
    words = []
    for s in SESSIONS:
        both = [f"Ses{s:02d}{g}" for g in GENDERS]
        if all(b in speakers for b in both):
            words.append(f"Session{s}")
        else:
            words.extend(b for b in both if b in speakers)
    return ",".join(words)


def prepare(
    corpus_dir: Path, outdir: Path, fold: int, dev_split: str = "session"
) -> Dict[str, Dict[str, int]]:
    """Write ``train``, ``dev``, ``test``, ``emotion_list`` and ``fold`` of one fold.

    Returns:
        Set name -> {class code, ``excluded:<code>`` or ``merged:exc``: count}.
    """
    sets = fold_speakers(fold, dev_split)
    utterances = read_corpus(corpus_dir)
    check_audio(corpus_dir, utterances)
    check_attributes(utterances)
    set_of = {spk: name for name, spks in sets.items() for spk in spks}

    summary: Dict[str, Dict[str, int]] = {}
    for name in SPLITS:
        members = [u for u in utterances if set_of[u.spk] == name]
        kept = [u for u in members if u.code in CLASS_MAP]
        dropped = [u for u in members if u.code not in CLASS_MAP]
        if not kept:
            raise MeritInputError(
                f"{corpus_dir}: fold {fold}: {name} ({_describe(sets[name])}) has no "
                f"utterance of {' '.join(sorted(CLASS_MAP))}"
            )
        d = outdir / name
        write_kaldi(d / "wav.scp", {u.utt: str(u.path) for u in kept})
        write_kaldi(d / "utt2spk", {u.utt: u.spk for u in kept})
        write_kaldi(d / "utt2gender", {u.utt: u.gender for u in kept})
        write_kaldi(d / "emotion", {u.utt: CLASS_MAP[u.code] for u in kept})
        write_kaldi(
            d / "emotion_attr",
            {u.utt: " ".join(repr(a) for a in u.attrs) for u in kept},
        )
        write_kaldi(d / "excluded", {u.utt: u.code for u in dropped})
        labels = Counter(CLASS_MAP[u.code] for u in kept)
        excluded = Counter(u.code for u in dropped)
        counts = {c: labels.get(c, 0) for c in CLASS_SET}
        counts["merged:exc"] = sum(u.code == "exc" for u in kept)
        counts.update({f"excluded:{c}": n for c, n in sorted(excluded.items())})
        summary[name] = counts
        logger.info(
            f"{name} ({_describe(sets[name])}): {len(kept)} of {len(members)} "
            f"utterances; H = hap {counts['H'] - counts['merged:exc']} + exc "
            f"{counts['merged:exc']}; excluded "
            + (", ".join(f"{c} {n}" for c, n in sorted(excluded.items())) or "none")
        )
    atomic_write_text(outdir / "emotion_list", "\n".join(CLASS_SET) + "\n")
    atomic_write_text(
        outdir / "fold",
        f"fold={fold} dev_split={dev_split} "
        + " ".join(f"{n}={_describe(sets[n])}" for n in ("test", "dev", "train"))
        + "\n",
    )
    return summary


def format_summary(summary: Dict[str, Dict[str, int]]) -> str:
    """A text table: set x class counts (H with exc merged), excluded, total."""
    cols = [*CLASS_SET, "(exc)", "excluded", "total"]
    lines = [f"{'set':<8}" + "".join(f"{c:>9}" for c in cols)]
    for name, counts in summary.items():
        kept = [counts[c] for c in CLASS_SET]
        excluded = sum(n for k, n in counts.items() if k.startswith("excluded:"))
        cells = [*kept, counts["merged:exc"], excluded, sum(kept)]
        lines.append(f"{name:<8}" + "".join(f"{x:>9}" for x in cells))
    return "\n".join(lines)


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point(PROG):
        summary = prepare(args.corpus_dir, args.outdir, args.fold, args.dev_split)
    print(format_summary(summary))
    logger.info(f"wrote {', '.join(str(args.outdir / s) for s in summary)}")


if __name__ == "__main__":
    main()
