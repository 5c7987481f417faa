"""A dev set drawn from a recipe's training candidates (speakers, patients or
utterances), seeded, and the written list that reproduces it.

Stage-1 scripts that have no official dev set hold out ``round(N * ratio)`` of
their N candidates (``draw_dev``), write the drawn ids one per line, and read such
a list back (``read_dev_list``) so that another run (or another machine) uses the
same dev set whatever its seed.
"""

import math
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from espnet2_merit.errors import MeritInputError


def draw_dev(
    candidates: Sequence[str], ratio: float, seed: int, what: str = "candidates"
) -> List[str]:
    """``round(N * ratio)`` (at least 1, and 1 left for train) of the N
    candidates, drawn with ``seed`` from their sorted order (so the draw does not
    depend on the order the corpus lists them in); sorted.

    Args:
        candidates: Ids that may go to dev.
        ratio: Share in (0, 1) (``--dev_ratio``).
        seed: Seed of the draw.
        what: The candidates in messages (e.g. "official train patients").
    """
    if not 0 < ratio < 1:
        raise MeritInputError(f"--dev_ratio {ratio}: expected a share in (0, 1)")
    n = len(candidates)
    n_dev = max(1, math.floor(n * ratio + 0.5))
    if n - n_dev < 1:
        raise MeritInputError(
            f"{n} {what}: {n_dev} for dev (--dev_ratio {ratio}) leave none for train"
        )
    order = sorted(candidates)
    perm = np.random.default_rng(seed).permutation(n)
    return sorted(order[i] for i in perm[:n_dev])


def read_dev_list(
    path: Path,
    candidates: Sequence[str],
    option: str = "--dev_list",
    item: str = "id",
    pool: str = "the train split",
) -> List[str]:
    """The ids of a dev list (one per line; blank lines skipped), each one of the
    candidates, none twice, and not all of them; sorted.

    Args:
        path: The list.
        candidates: Ids that may go to dev.
        option: The option that named the file, for messages.
        item: What an id is ("patient"), for messages.
        pool: What the candidates are, for messages.
    """
    if not path.is_file():
        raise MeritInputError(f"{option} {path}: no such file")
    known = set(candidates)
    dev: Dict[str, int] = {}
    for num, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = text.split()
        if not fields:
            continue
        if len(fields) != 1:
            raise MeritInputError(f"{path}:{num}: {text!r}: expected one {item}")
        key = fields[0]
        if key in dev:
            raise MeritInputError(f"{path}:{num}: {item} {key} repeats line {dev[key]}")
        if key not in known:
            raise MeritInputError(f"{path}:{num}: {item} {key} is not in {pool}")
        dev[key] = num
    if not dev:
        raise MeritInputError(f"{path}: no {item}s")
    if len(dev) == len(known):
        raise MeritInputError(f"{path}: every one of {pool} is in dev")
    return sorted(dev)
