#!/usr/bin/env python3
"""Write a miniature IEMOCAP in the release's exact layout (synthetic audio).

    python local/make_mini_iemocap.py --outdir downloads/mini_iemocap \
        [--utts_per_dialog 6] [--seed 0] [--min_sec 1.2] [--max_sec 2.5]

The layout and label format are those ``local/iemocap_data.py`` documents (and
reads), so stage 1 runs unchanged on it:

  <outdir>/Session{1..5}/sentences/wav/<dialog>/<dialog>_<F|M><nnn>.wav
  <outdir>/Session{1..5}/dialog/EmoEvaluation/<dialog>.txt

Each session has four dialogs in the official naming: ``Ses0<s>F_impro01``,
``Ses0<s>M_impro02`` (``Ses03M_impro05a`` in session 3, a split improvisation),
``Ses0<s>F_script01_1`` and ``Ses0<s>M_script02_2`` (F/M after the session number:
who wore the markers). The two actors of a session take turns, the marker wearer
first; turns are numbered per actor (``F000``, ``M000``, ``F001``, ...), so every
dialog holds both speakers. An EmoEvaluation file has the release's header line
``% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]`` and a blank line, then per
utterance (in time order) the tab-separated utterance line
``[start - end]  utt  code  [V, A, D]``, three categorical evaluator lines
``C-E<k>:  <Category>;  ()`` (the speaking actor's own ``C-F1``/``C-M1`` line for
every third turn), the dimensional evaluator lines ``A-E<k>:  val v; act a; dom  d;
()`` of two or three evaluators, and a blank line. The bracket holds the means of
those evaluators' integer ratings (1-5), 4 decimals, as the release writes them.

Category codes cycle through ``CODES`` (shifted per session), so every session has
all eleven codes of the corpus with ``utts_per_dialog`` >= 5: the four classes
(ang hap sad neu), exc (merged into hap), and fru sur fea dis oth xxx (excluded).
An xxx utterance's three categorical evaluators disagree. Audio is
``espnet2_merit.utils.synthetic.voice`` (16 kHz mono, 16-bit) of a class chosen by
the code (``VOICE``: exc and sur sound happy, fru and dis angry, fea sad, oth
neutral, xxx any of the four), ``min_sec``-``max_sec`` seconds; the ratings are
near that class's typical attributes (``synthetic.ATTRIBUTES``, 1-7, mapped to
1-5). Everything random comes from ``--seed``.

``<outdir>`` must be empty or an earlier miniature (marked by ``MARKER``), whose
sessions are then replaced; anything else (a real corpus) is never touched.
"""

import argparse
import logging
import shutil
from pathlib import Path
from typing import List, NamedTuple

import numpy as np
import soundfile

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.cli import entry_point
from espnet2_merit.utils.synthetic import ATTRIBUTES, voice

PROG = "make_mini_iemocap.py"
FS = 16000
SESSIONS = (1, 2, 3, 4, 5)
DIALOGS = ("F_impro01", "M_impro02", "F_script01_1", "M_script02_2")
RENAMED = {"Ses03M_impro02": "Ses03M_impro05a"}
HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"
# Utterance k of session s gets CODES[(k + 3 * s) % len(CODES)].
CODES = (
    "neu", "ang", "hap", "sad", "exc", "fru", "neu", "xxx", "sad", "ang",
    "exc", "hap", "neu", "fru", "sur", "xxx", "fea", "dis", "oth",
)  # fmt: skip
# The class whose synthetic voice (and attributes) an IEMOCAP code gets.
VOICE = {
    "neu": "N", "hap": "H", "exc": "H", "sad": "S", "ang": "A", "fru": "A",
    "sur": "H", "fea": "S", "dis": "A", "oth": "N",
}  # fmt: skip
# Evaluators' category words (C-E lines).
CATEGORY = {
    "neu": "Neutral", "hap": "Happiness", "exc": "Excited", "sad": "Sadness",
    "ang": "Anger", "fru": "Frustration", "sur": "Surprise", "fea": "Fear",
    "dis": "Disgust", "oth": "Other",
}  # fmt: skip
MARKER = ".mini_iemocap"
logger = logging.getLogger(PROG)


class MiniUtterance(NamedTuple):
    """What the miniature holds for one utterance (the tests' reference)."""

    session: int
    dialog: str
    utt: str
    code: str
    speaker: str  # Ses0<s><F|M>: session + the turn's gender
    valence: float
    activation: float
    dominance: float
    seconds: float


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Write a miniature IEMOCAP (official layout, synthetic audio)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--outdir", type=Path, required=True)
    parser.add_argument("--utts_per_dialog", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min_sec", type=float, default=1.2)
    parser.add_argument("--max_sec", type=float, default=2.5)
    return parser


def dialog_names(session: int) -> List[str]:
    names = [f"Ses{session:02d}{d}" for d in DIALOGS]
    return [RENAMED.get(n, n) for n in names]


def _ratings(rng: np.random.Generator, target: float, n: int) -> np.ndarray:
    """``n`` evaluators' integer ratings (1-5) around ``target``."""
    return np.clip(np.rint(target + rng.normal(0, 0.7, n)), 1, 5).astype(int)


def _evaluations(rng, code: str, gender: str, turn: int, ratings) -> List[str]:
    """The evaluator lines of one utterance block."""
    if code == "xxx":  # no majority: three different categories
        words = rng.choice(sorted(CATEGORY.values()), size=3, replace=False)
    else:
        words = [CATEGORY[code]] * 3
        if rng.random() < 0.3:  # a dissenting evaluator
            words[int(rng.integers(3))] = CATEGORY["neu" if code != "neu" else "fru"]
    lines = [f"C-E{k + 2}:\t{w};\t()" for k, w in enumerate(words)]
    if turn % 3 == 0:  # the speaking actor's own evaluation
        lines.append(f"C-{gender}1:\t{words[0]};\t()")
    val, act, dom = ratings
    for k in range(len(val)):
        lines.append(f"A-E{k + 2}:\tval {val[k]}; act {act[k]}; dom  {dom[k]};\t()")
    return lines


def write_dialog(root: Path, session: int, dialog: str, first: int, n: int, rng, args):
    """Audio and EmoEvaluation file of one dialog; returns its utterances."""
    wav_dir = root / f"Session{session}" / "sentences" / "wav" / dialog
    wav_dir.mkdir(parents=True)
    label_dir = root / f"Session{session}" / "dialog" / "EmoEvaluation"
    label_dir.mkdir(parents=True, exist_ok=True)
    wearer = dialog[len("Ses01")]
    other = "M" if wearer == "F" else "F"
    turns = {"F": 0, "M": 0}
    lines = [HEADER, ""]
    utterances = []
    clock = float(rng.uniform(2.0, 8.0))
    for i in range(n):
        gender = wearer if i % 2 == 0 else other
        utt = f"{dialog}_{gender}{turns[gender]:03d}"
        turns[gender] += 1
        code = CODES[(first + i + 3 * session) % len(CODES)]
        label = VOICE[code] if code != "xxx" else str(rng.choice(sorted(ATTRIBUTES)))
        seconds = round(float(rng.uniform(args.min_sec, args.max_sec)), 4)
        wav = voice(label, seconds, FS, rng)
        wav = wav / max(1.0, float(np.abs(wav).max()) / 0.9)
        soundfile.write(wav_dir / f"{utt}.wav", wav, FS, subtype="PCM_16")
        # 1-7 (arousal, valence, dominance) -> 1-5 targets; evaluators' ratings.
        aro, val, dom = (1 + (x - 1) * 4 / 6 for x in ATTRIBUTES[label])
        raters = int(rng.integers(2, 4))
        ratings = [_ratings(rng, t, raters) for t in (val, aro, dom)]
        v, a, d = (float(r.mean()) for r in ratings)
        start, end = clock, clock + seconds
        clock = end + float(rng.uniform(0.2, 1.5))
        lines.append(
            f"[{start:.4f} - {end:.4f}]\t{utt}\t{code}\t[{v:.4f}, {a:.4f}, {d:.4f}]"
        )
        lines.extend(_evaluations(rng, code, gender, i, ratings))
        lines.append("")
        utterances.append(
            MiniUtterance(
                session,
                dialog,
                utt,
                code,
                f"Ses{session:02d}{gender}",
                round(v, 4),
                round(a, 4),
                round(d, 4),
                seconds,
            )
        )
    (label_dir / f"{dialog}.txt").write_text("\n".join(lines) + "\n")
    return utterances


def make_corpus(
    outdir: Path,
    utts_per_dialog: int = 6,
    seed: int = 0,
    min_sec: float = 1.2,
    max_sec: float = 2.5,
) -> List[MiniUtterance]:
    """Write the miniature; returns its utterances in file order."""
    if utts_per_dialog < 2:
        raise MeritInputError(
            f"--utts_per_dialog {utts_per_dialog}: expected at least 2 (both actors)"
        )
    if not 0 < min_sec <= max_sec:
        raise MeritInputError(f"--min_sec {min_sec} --max_sec {max_sec}: bad range")
    outdir = Path(outdir)
    if outdir.exists():
        if not (outdir / MARKER).is_file() and any(outdir.iterdir()):
            raise MeritInputError(
                f"--outdir {outdir}: not empty and not a miniature made by {PROG} "
                f"(no {MARKER}); refusing to write into it"
            )
        for old in outdir.glob("Session*"):
            shutil.rmtree(old)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / MARKER).write_text(
        f"utts_per_dialog={utts_per_dialog} seed={seed} min_sec={min_sec} "
        f"max_sec={max_sec}\n"
    )
    (outdir / "README.txt").write_text(
        f"A synthetic miniature of IEMOCAP_full_release's layout, written by {PROG}"
        " (no real speech).\n"
    )
    args = argparse.Namespace(min_sec=min_sec, max_sec=max_sec)
    rng = np.random.default_rng(seed)
    utterances: List[MiniUtterance] = []
    for session in SESSIONS:
        first = 0
        for dialog in dialog_names(session):
            utterances += write_dialog(
                outdir, session, dialog, first, utts_per_dialog, rng, args
            )
            first += utts_per_dialog
    return utterances


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point(PROG):
        utts = make_corpus(
            args.outdir, args.utts_per_dialog, args.seed, args.min_sec, args.max_sec
        )
    codes = sorted({u.code for u in utts})
    logger.info(
        f"wrote {len(utts)} utterances of {len(SESSIONS)} sessions to {args.outdir} "
        f"(codes: {' '.join(codes)})"
    )


if __name__ == "__main__":
    main()
