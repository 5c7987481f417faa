"""Word error rate of transcripts against references: the word-level edit
distance of torchaudio (``torchaudio.functional.edit_distance``).

Both sides are normalised first (``normalize``): lower case, punctuation removed
(an apostrophe inside a word kept), whitespace collapsed, so that a CTC model's
upper-case, unpunctuated output and Whisper's punctuated one are scored alike.
"""

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Dict, List, Mapping

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


@dataclass
class WerResult:
    """Corpus-level word error counts."""

    utterances: int
    ref_words: int
    errors: int  # substitutions + deletions + insertions

    @property
    def wer(self) -> float:
        """Errors / reference words (can exceed 1); nan without reference words."""
        return self.errors / self.ref_words if self.ref_words else float("nan")

    def as_dict(self) -> Dict[str, float]:
        return {**asdict(self), "wer": self.wer}

    def __str__(self) -> str:
        return (
            f"WER {100 * self.wer:.2f}% ({self.errors} errors in "
            f"{self.ref_words} reference words, {self.utterances} utterances)"
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
    from torchaudio.functional import edit_distance

    words = {utt: normalize(ref) for utt, ref in refs.items()}
    errors = sum(edit_distance(w, normalize(hyps[utt])) for utt, w in words.items())
    return WerResult(len(refs), sum(map(len, words.values())), errors)
