"""Recipe stage 2a: split noise recordings into disjoint train/dev/test pools.

    python -m espnet2_merit.bin.merit_prepare_noise --seen_dirs "crss freesound" --unseen_dirs "dns" \
        --outdir data/noise --dev_ratio 0.1 --test_ratio 0.2 --seed 0

Audio files (wav/flac, searched recursively) of each *seen* directory (one noise
type each) are shuffled and split into train, dev and test_seen pools, so every
noise type appears in every pool and no recording is in two pools. The files of the
*unseen* directories form test_unseen only: noise types the model never hears in
training. Writes ``<outdir>/{train,dev,test_seen,test_unseen}.scp``
("<noise_id> <absolute path>", sorted; test_unseen.scp only with --unseen_dirs).

The shuffle of a directory is seeded by --seed and the directory's file list (not
its location or its position in the option), so the same files give the same pools
on any machine.

``--kind rir`` splits room impulse responses the same way (one directory per room
type; the unseen directories are room types held out for test_unseen), for the
reverberation of stage 2 (``merit_simulate_noise --rir_scp``); only the wording of
the messages differs.
"""

import hashlib
import logging
import re
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import soundfile

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.datadir import write_kaldi

PROG = "merit_prepare_noise"
AUDIO_SUFFIXES = (".wav", ".flac")
POOLS = ("train", "dev", "test_seen", "test_unseen")
KINDS = {"noise": "noise", "rir": "RIR"}  # --kind -> the word of the messages
logger = logging.getLogger(PROG)


def find_audio(directory: Path, kind: str = "noise") -> List[Path]:
    """Audio files under ``directory`` (recursive), sorted by relative path."""
    word = KINDS[kind]
    if not directory.is_dir():
        raise MeritInputError(f"{word} directory {directory}: no such directory")
    files = sorted(
        p
        for p in directory.rglob("*")
        if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
    )
    if not files:
        raise MeritInputError(
            f"{word} directory {directory}: no audio files "
            f"({'/'.join(s[1:] for s in AUDIO_SUFFIXES)}) found"
        )
    for p in files:
        try:
            frames = soundfile.info(str(p)).frames
        except Exception as e:
            raise MeritInputError(f"{word} file {p}: cannot read audio: {e}") from None
        if frames == 0:
            raise MeritInputError(f"{word} file {p}: has no samples")
    return files


def split_counts(n: int, dev_ratio: float, test_ratio: float) -> Tuple[int, int, int]:
    """(train, dev, test) sizes of a directory of ``n`` files: each pool gets its
    share (rounded) but at least one file."""
    n_dev = max(1, round(n * dev_ratio))
    n_test = max(1, round(n * test_ratio))
    return n - n_dev - n_test, n_dev, n_test


def _shuffle_seed(seed: int, rel_paths: Sequence[str]) -> int:
    text = f"{seed}\n" + "\n".join(rel_paths)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def _noise_ids(tag: str, directory: Path, files: Sequence[Path]) -> List[str]:
    """``<tag>-<relative path without suffix>``, '/' -> '-', other characters
    outside [A-Za-z0-9._-] -> '_'."""
    ids = []
    for p in files:
        rel = p.relative_to(directory).with_suffix("").as_posix()
        ids.append(re.sub(r"[^A-Za-z0-9._-]", "_", f"{tag}-{rel.replace('/', '-')}"))
    return ids


def _tags(dirs: Sequence[Path]) -> List[str]:
    """A short tag per directory: its name, numbered when two names collide."""
    names = [d.resolve().name or "noise" for d in dirs]
    return [f"{n}{i}" if names.count(n) > 1 else n for i, n in enumerate(names, 1)]


def prepare_noise(
    seen_dirs: Sequence[Path],
    unseen_dirs: Sequence[Path],
    outdir: Path,
    dev_ratio: float = 0.1,
    test_ratio: float = 0.2,
    seed: int = 0,
    kind: str = "noise",
) -> Dict[str, Dict[str, str]]:
    """Build the pools and write their scp files.

    Args:
        kind: ``"noise"`` or ``"rir"`` (room impulse responses): what the files
            are, for the messages.

    Returns:
        Pool name -> {file id: absolute path}.
    """
    if kind not in KINDS:
        raise MeritInputError(f"--kind {kind!r} is not one of {list(KINDS)}")
    word = KINDS[kind]
    if not seen_dirs:
        raise MeritInputError("--seen_dirs is empty: give at least one directory")
    if not (0 < dev_ratio < 1 and 0 < test_ratio < 1 and dev_ratio + test_ratio < 1):
        raise MeritInputError(
            f"--dev_ratio {dev_ratio} and --test_ratio {test_ratio}: each must be in "
            "(0, 1) and their sum below 1 (the rest is the train pool)"
        )
    resolved = [d.resolve() for d in [*seen_dirs, *unseen_dirs]]
    for d in unseen_dirs:
        if d.resolve() in resolved[: len(seen_dirs)]:
            raise MeritInputError(
                f"{word} directory {d} is in both --seen_dirs and --unseen_dirs: "
                f"unseen {word} types must not be heard in training"
            )
    if len(set(resolved)) != len(resolved):
        raise MeritInputError(f"a {word} directory is listed twice")

    pools: Dict[str, Dict[str, str]] = {p: {} for p in POOLS}
    tags = _tags([*seen_dirs, *unseen_dirs])
    for i, d in enumerate([*seen_dirs, *unseen_dirs]):
        files = find_audio(d, kind)
        ids = _noise_ids(tags[i], d, files)
        if i >= len(seen_dirs):
            counts = {"test_unseen": len(files)}
            order = np.arange(len(files))
        else:
            n_train, n_dev, n_test = split_counts(len(files), dev_ratio, test_ratio)
            if n_train < 1:
                raise MeritInputError(
                    f"{word} directory {d}: {len(files)} audio file(s) cannot be split "
                    "into train/dev/test_seen pools of at least one file each (add "
                    "files, or list the directory in --unseen_dirs)"
                )
            counts = {"train": n_train, "dev": n_dev, "test_seen": n_test}
            rel = [p.relative_to(d).as_posix() for p in files]
            order = np.random.default_rng(_shuffle_seed(seed, rel)).permutation(
                len(files)
            )
        start = 0
        for pool, n in counts.items():
            for j in order[start : start + n]:
                nid = ids[j]
                if any(nid in ids_ for ids_ in pools.values()):
                    raise MeritInputError(
                        f"{word} file {files[j]}: its id '{nid}' is taken by another "
                        "file (rename one of them)"
                    )
                pools[pool][nid] = str(files[j].resolve())
            start += n
        logger.info(
            f"{d}: {len(files)} files -> "
            + ", ".join(f"{pool} {n}" for pool, n in counts.items())
        )

    outdir.mkdir(parents=True, exist_ok=True)
    for pool in POOLS:
        path = outdir / f"{pool}.scp"
        if pool == "test_unseen" and not unseen_dirs:
            path.unlink(missing_ok=True)  # a stale pool would look like unseen types
            logger.warning("no --unseen_dirs: test_unseen.scp is not written")
            continue
        if not pools[pool]:
            raise MeritInputError(f"the {pool} {word} pool is empty")
        write_kaldi(path, pools[pool])
    logger.info(
        f"wrote {outdir}: "
        + ", ".join(f"{p} {len(pools[p])}" for p in POOLS if pools[p])
        + f" {word} files"
    )
    return pools
