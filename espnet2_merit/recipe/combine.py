"""Recipe stage 1 (``merit.sh --unlabelled_sets``): a training set and unlabelled
pools as one data directory, for semi-supervised training.

    python -m espnet2_merit.bin.merit_combine_data --unlabelled data/test3 \
        data/train data/train_semi

The output lists every utterance of the labelled set, then of each pool: the
sound lists and per-utterance files (utt2spk, utt2gender, ...) are concatenated,
and each label file of the labelled set (emotion, emotion_attr, emotion_votes)
gets ``-`` (no label) for every pool utterance, so that a pool utterance trains
only the tasks whose targets it has (enhancement on its noisy/clean pair, the
augmentation tasks on what the data loader makes) and never the emotion tasks.
Labels a pool has are left out (and logged). An utterance id in two sets, or a
per-utterance file that some but not all sets have (label files aside), is an
error naming them.
"""

import logging
from pathlib import Path
from typing import Dict, Sequence

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import NO_TARGET
from espnet2_merit.utils.datadir import (
    KEYED_TEXT_FILES,
    SOUND_SCPS,
    read_kaldi,
    write_kaldi,
)

PROG = "merit_combine_data"
LABEL_FILES = ("emotion", "emotion_attr", "emotion_votes")
KEYED_FILES = (*SOUND_SCPS, *KEYED_TEXT_FILES)
logger = logging.getLogger(PROG)


def combine(
    labelled: Path, unlabelled: Sequence[Path], out_dir: Path
) -> Dict[str, int]:
    """Write the combined directory; returns set directory -> utterances."""
    if not unlabelled:
        raise MeritInputError("give at least one --unlabelled set")
    sets = [Path(labelled), *map(Path, unlabelled)]
    if Path(out_dir).resolve() in {d.resolve() for d in sets}:
        raise MeritInputError(f"the output dir {out_dir} must differ from the inputs")
    owner: Dict[str, Path] = {}
    for d in sets:
        for utt in read_kaldi(d / "wav.scp"):
            if utt in owner:
                raise MeritInputError(
                    f"utterance '{utt}' is in both {owner[utt]} and {d}: "
                    "utterance ids must be unique across the combined sets"
                )
            owner[utt] = d
    labelled, pools = sets[0], sets[1:]
    unlabelled_utts = {u: NO_TARGET for u, d in owner.items() if d != labelled}
    for name in KEYED_FILES:
        present = [d for d in sets if (d / name).is_file()]
        if name in LABEL_FILES:
            for pool in pools:
                if (pool / name).is_file():
                    logger.warning(f"{pool / name}: the pool's labels are left out")
            if labelled in present:
                table = {**read_kaldi(labelled / name), **unlabelled_utts}
                write_kaldi(out_dir / name, table)
            else:
                (out_dir / name).unlink(missing_ok=True)
        elif not present:
            (out_dir / name).unlink(missing_ok=True)
        elif len(present) != len(sets):
            missing = [str(d) for d in sets if d not in present]
            raise MeritInputError(
                f"{present[0] / name} exists but {', '.join(missing)} has no {name}: "
                "the combined sets need the same per-utterance files"
            )
        else:
            table = {}
            for d in sets:
                table.update(read_kaldi(d / name))
            write_kaldi(out_dir / name, table)
    counts = {str(d): sum(o == d for o in owner.values()) for d in sets}
    logger.info(
        f"{out_dir}: {len(owner)} utterances, {len(unlabelled_utts)} of them "
        f"unlabelled ({', '.join(f'{d} {n}' for d, n in counts.items())})"
    )
    return counts
