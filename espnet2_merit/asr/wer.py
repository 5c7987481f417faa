"""Word error rate of transcripts against references, by word-level edit distance
(no dependency: the package does not require ``jiwer``).

Both sides are normalised first (``normalize``): lower case, punctuation removed
(an apostrophe inside a word kept), whitespace collapsed, so that a CTC model's
upper-case, unpunctuated output and Whisper's punctuated one are scored alike.
"""

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Dict, List, Mapping, Sequence, Tuple

from espnet2_merit.errors import MeritInputError


def normalize(text: str) -> List[str]:
    """The words of a transcript: lower-cased, without punctuation (symbols and
    punctuation become spaces; an apostrophe between letters stays)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(?<=\w)'(?=\w)", "\0", text)  # keep "don't", drop quotes
    text = "".join(
        " " if unicodedata.category(c)[0] in "PSZC" and c != "\0" else c for c in text
    )
    return text.replace("\0", "'").split()


def edit_ops(ref: Sequence[str], hyp: Sequence[str]) -> Tuple[int, int, int]:
    """(substitutions, deletions, insertions) of a minimal word alignment
    (Levenshtein; among minimal ones, the fewest substitutions+deletions first)."""
    # row[j]: (cost, subs, dels, ins) of aligning ref[:i] with hyp[:j]
    row = [(j, 0, 0, j) for j in range(len(hyp) + 1)]
    for i in range(1, len(ref) + 1):
        new = [(i, 0, i, 0)]
        for j in range(1, len(hyp) + 1):
            c, s, d, n = row[j - 1]
            same = ref[i - 1] == hyp[j - 1]
            diag = (c + (not same), s + (not same), d, n)
            c, s, d, n = row[j]
            up = (c + 1, s, d + 1, n)  # ref word deleted
            c, s, d, n = new[j - 1]
            left = (c + 1, s, d, n + 1)  # hyp word inserted
            new.append(min(diag, up, left))
        row = new
    _, subs, dels, ins = row[-1]
    return subs, dels, ins


@dataclass
class WerResult:
    """Corpus-level word error counts."""

    utterances: int
    ref_words: int
    substitutions: int
    deletions: int
    insertions: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """Errors / reference words (can exceed 1); nan without reference words."""
        return self.errors / self.ref_words if self.ref_words else float("nan")

    def as_dict(self) -> Dict[str, float]:
        return {**asdict(self), "errors": self.errors, "wer": self.wer}

    def __str__(self) -> str:
        return (
            f"WER {100 * self.wer:.2f}% ({self.errors} errors: "
            f"{self.substitutions} substitutions, {self.deletions} deletions, "
            f"{self.insertions} insertions; {self.ref_words} reference words, "
            f"{self.utterances} utterances)"
        )


def corpus_wer(refs: Mapping[str, str], hyps: Mapping[str, str]) -> WerResult:
    """WER of the hypotheses of every utterance in ``refs``.

    Args:
        refs: Utterance id -> reference transcript.
        hyps: Utterance id -> recognised transcript; must hold every id of refs.

    Raises:
        MeritInputError: An utterance of ``refs`` has no hypothesis, or refs is
            empty.
    """
    if not refs:
        raise MeritInputError("no reference transcripts to score")
    missing = [utt for utt in refs if utt not in hyps]
    if missing:
        raise MeritInputError(
            f"{len(missing)} reference utterances have no transcript (first: "
            f"'{missing[0]}')"
        )
    counts = [0, 0, 0]
    ref_words = 0
    for utt, ref in refs.items():
        ref_w = normalize(ref)
        ref_words += len(ref_w)
        for k, v in enumerate(edit_ops(ref_w, normalize(hyps[utt]))):
            counts[k] += v
    return WerResult(len(refs), ref_words, *counts)
