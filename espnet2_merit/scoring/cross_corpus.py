"""Cross-corpus evaluation: a model trained on one corpus scored on another
corpus's test sets, both sides' emotion classes mapped to a declared shared set.

A **label map** file maps one corpus's emotion classes (the codes its stage 1
writes in ``emotion``) to the classes of a shared set, one class a line; ``#``
starts a comment; a class that is not listed is not mapped::

    # <class> <shared class>
    A angry
    S sad
    H happy
    N neutral

Scoring a set with a test map (the test corpus's) and a model map (the classes of
the model's own corpus; none: the model's classes are the shared classes):

- the shared classes are the model map's shared classes, in the order of the
  model's class list; a shared class of the test map outside them is an error
  naming its line (a typo would otherwise drop a class without a word);
- references: each utterance's label through the test map; an utterance whose
  label is not mapped is left out of the label scores and counted per label,
  never given another class;
- hypotheses: the posteriors of the model classes mapped to the same shared
  class are summed, and the prediction is the shared class of the largest sum,
  so the model never predicts a class the test corpus does not score (an
  unmapped model class, e.g. MSP-Podcast's U or C, takes no part).

Every label metric of the registry is then computed over the shared classes.
"""

from collections import Counter
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError

PathLike = Union[str, Path]
PREFIX = "cross_"  # decode dir names of cross-corpus sets: cross_<corpus>_<set>
FORMAT = "'<class> <shared class>' (one a line, '#' comments)"


class LabelMap(NamedTuple):
    """A label map file: class -> shared class, and the line of each class."""

    path: Path
    mapping: Dict[str, str]
    lines: Dict[str, int]


def read_label_map(path: PathLike) -> LabelMap:
    """Read a label map file (the format in the module docstring).

    A line that is not two words, a class given twice and a file without any
    class are errors naming the file (and line).
    """
    path = Path(path)
    if not path.is_file():
        raise MeritInputError(f"{path}: no such label map file")
    mapping: Dict[str, str] = {}
    lines: Dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for num, line in enumerate(f, 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) != 2:
                raise MeritInputError(
                    f"{path}:{num}: expected {FORMAT}, got {line.strip()!r}"
                )
            cls, shared = words
            if cls in mapping:
                raise MeritInputError(
                    f"{path}:{num}: class '{cls}' given twice (first on line "
                    f"{lines[cls]})"
                )
            mapping[cls], lines[cls] = shared, num
    if not mapping:
        raise MeritInputError(f"{path}: no class mapped (expected {FORMAT})")
    return LabelMap(path, mapping, lines)


class CrossMap:
    """The test corpus's map and the model's, resolved against the model's classes.

    Args:
        test_map: The test corpus's label map.
        model_classes: (C,) the model's classes, in its output order.
        model_map: The model's corpus's label map; None: every model class is a
            shared class of its own name.
        corpus: The test corpus's name (for titles).
    """

    @typechecked
    def __init__(
        self,
        test_map: LabelMap,
        model_classes: Sequence[str],
        model_map: Optional[LabelMap] = None,
        corpus: str = "",
    ):
        self.test_map, self.model_map, self.corpus = test_map, model_map, corpus
        self.model_classes = list(model_classes)
        if model_map is None:
            self.model_to_shared = {c: c for c in self.model_classes}
        else:
            for cls, num in model_map.lines.items():
                if cls not in self.model_classes:
                    raise MeritInputError(
                        f"{model_map.path}:{num}: class '{cls}' is not one of the "
                        f"model's classes {self.model_classes}"
                    )
            self.model_to_shared = dict(model_map.mapping)
        # Shared classes in the order of the model's output classes.
        self.shared: List[str] = []
        for c in self.model_classes:
            s = self.model_to_shared.get(c)
            if s is not None and s not in self.shared:
                self.shared.append(s)
        model_side = (
            f"the model's classes {self.model_classes}"
            if model_map is None
            else f"the shared classes {self.shared} of {model_map.path}"
        )
        if not set(test_map.mapping.values()) & set(self.shared):
            raise MeritInputError(
                f"{test_map.path}: its shared classes "
                f"{sorted(set(test_map.mapping.values()))} share no class with "
                f"{model_side}"
            )
        for cls, shared in test_map.mapping.items():
            if shared not in self.shared:
                raise MeritInputError(
                    f"{test_map.path}:{test_map.lines[cls]}: class '{cls}' maps to "
                    f"'{shared}', which is not one of {model_side}"
                )
        # (C, S) 0/1: which shared class each model output adds to.
        self.matrix = np.zeros((len(self.model_classes), len(self.shared)))
        for i, c in enumerate(self.model_classes):
            if c in self.model_to_shared:
                self.matrix[i, self.shared.index(self.model_to_shared[c])] = 1.0

    def predict(self, posteriors: np.ndarray) -> List[str]:
        """(N, C) model posteriors -> (N,) shared classes: the argmax of the
        posteriors summed per shared class (the first on a tie)."""
        if posteriors.ndim != 2 or posteriors.shape[1] != len(self.model_classes):
            raise MeritInputError(
                f"posteriors of shape {posteriors.shape}, expected (N, "
                f"{len(self.model_classes)}) for the classes {self.model_classes}"
            )
        summed = posteriors @ self.matrix
        return [self.shared[j] for j in np.argmax(summed, axis=1)]

    def map_references(
        self, labels: Sequence[str]
    ) -> Tuple[List[Optional[str]], Dict[str, int]]:
        """(N,) test-corpus labels -> (N,) shared classes (None: not mapped, left
        out) and the count of each label left out."""
        mapped = [self.test_map.mapping.get(lab) for lab in labels]
        left_out = Counter(lab for lab, m in zip(labels, mapped) if m is None)
        return mapped, dict(sorted(left_out.items()))

    def describe(self) -> Dict:
        """JSON-ready: what a cross-corpus score was made with (summary.json)."""
        return {
            "corpus": self.corpus,
            "test_map": str(self.test_map.path),
            "model_map": None if self.model_map is None else str(self.model_map.path),
            "shared_classes": list(self.shared),
            "test_classes": dict(self.test_map.mapping),
            "model_classes": {
                c: self.model_to_shared[c]
                for c in self.model_classes
                if c in self.model_to_shared
            },
        }

    def files(self) -> List[Path]:
        """The map files (inputs of the score: an edited map rescores)."""
        return [m.path for m in (self.test_map, self.model_map) if m is not None]


def title(cross: Dict) -> str:
    """One line naming a cross-corpus score's maps (RESULTS.md)."""
    model = f"`{cross['model_map']}`" if cross.get("model_map") else "none"
    return (
        f"Labels mapped to the shared classes {', '.join(cross['shared_classes'])}: "
        f"test labels by `{cross['test_map']}`, model classes by {model}"
    )


class CrossSpec(NamedTuple):
    """What scoring a cross-corpus set is given: the maps and the corpus name;
    resolved per decoded set against the model's classes (its manifest)."""

    test_map: LabelMap
    model_map: Optional[LabelMap] = None
    corpus: str = ""

    def resolve(self, model_classes: Sequence[str]) -> CrossMap:
        return CrossMap(self.test_map, model_classes, self.model_map, self.corpus)

    def options(self) -> Dict:
        """The options a score depends on (the files' contents are inputs)."""
        model = None if self.model_map is None else str(self.model_map.path)
        return {"corpus": self.corpus, "test_map": str(self.test_map.path),
                "model_map": model}  # fmt: skip
