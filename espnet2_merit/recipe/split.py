"""Split the keys of a Kaldi-style file into contiguous shards for parallel jobs.

    python -m espnet2_merit.bin.merit_split --nj 4 data/test/wav.scp exp/logdir/keys

writes ``keys.1`` ... ``keys.N`` (one utterance id per line, N = min(--nj, number of
utterances), sizes differing by at most one) and prints N, which the stage script
uses as its job count.
"""

from pathlib import Path

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.datadir import atomic_write_text, iter_kaldi


def split_keys(scp: Path, nj: int, outdir: Path) -> int:
    """Write ``outdir/keys.1`` ... ``keys.N`` of the keys of ``scp`` (values are
    not kept: the job list of stage 9 holds every test set); returns N."""
    if nj < 1:
        raise MeritInputError(f"--nj must be at least 1, got {nj}")
    keys = [key for _, key, _ in iter_kaldi(scp)]
    if not keys:
        raise MeritInputError(f"{scp}: no utterances")
    num = min(nj, len(keys))
    outdir.mkdir(parents=True, exist_ok=True)
    for old in outdir.glob("keys.*"):
        old.unlink()
    for i in range(num):
        shard = keys[i * len(keys) // num : (i + 1) * len(keys) // num]
        atomic_write_text(outdir / f"keys.{i + 1}", "\n".join(shard) + "\n")
    return num
