"""Stage 9's merge of decode shards (``espnet2_merit.inference.merge``) on shards
written by the decode job's own writer from made-up results (no model): sorted
sets whatever the shard order, memory bounded by a shard, nothing half-merged."""

import json
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from espnet2_merit.errors import MeritInputError
from espnet2_merit.inference.decode_dir import (
    MANIFEST,
    AtomicTextFiles,
    manifest,
    write_result,
)
from espnet2_merit.inference.merge import SEP, merge
from espnet2_merit.inference.results import EmotionEnhanceResult, Routes, TaskResult
from espnet2_merit.merit.heads.targets import LabelTarget
from espnet2_merit.utils.datadir import read_kaldi

CLASSES = ("A", "S", "H", "N")
SETS = ("a_seen_snr0", "b_unseen_snr0")


def _decoder():
    """What write_result and manifest read of a Speech2EmotionEnhance."""
    model = SimpleNamespace(
        heads={"ser": SimpleNamespace(target=LabelTarget("emotion", CLASSES))},
        fusion=SimpleNamespace(num_experts=3),
        frontend=SimpleNamespace(frame_shift=lambda: 320),
    )
    return SimpleNamespace(model=model, tasks=["ser"], fs=16000)


def _shards(root: Path, num_utts: int, num_shards: int, frames: int = 4):
    """Shards of the sorted job list over SETS, as stage 9 writes them."""
    rng = np.random.default_rng(0)
    keys = sorted(f"{s}{SEP}utt{i:05d}" for s in SETS for i in range(num_utts))
    s2e, shards = _decoder(), []
    for j in range(num_shards):
        out = root / f"output.{j + 1}"
        out.mkdir(parents=True)
        text = AtomicTextFiles(out)
        for key in keys[
            j * len(keys) // num_shards : (j + 1) * len(keys) // num_shards
        ]:
            experts = rng.integers(3, size=(frames, 1))
            res = EmotionEnhanceResult(
                fs=16000,
                tasks={
                    "ser": TaskResult("label", "emotion", rng.dirichlet(np.ones(4)))
                },
                routes={"ser": Routes(experts, np.ones((frames, 1)), np.zeros(frames))},
            )
            write_result(text, out, key, res, s2e)
        files = text.commit()
        (out / MANIFEST).write_text(json.dumps(manifest(s2e, files)))
        shards.append(out)
    return shards


def _expected(shards, name):
    """Per set, the sorted "<utt> <value>" lines of file ``name`` of all shards."""
    lines = {s: [] for s in SETS}
    for shard in shards:
        for key, value in read_kaldi(shard / name).items():
            dset, _, utt = key.partition(SEP)
            lines[dset].append(f"{utt} {value}\n")
    return {s: "".join(sorted(rows)) for s, rows in lines.items()}


def test_every_file_of_every_set_is_sorted_whatever_the_shard_order(tmp_path):
    shards = _shards(tmp_path / "shards", 30, 4)
    names = merge(shards, SETS, tmp_path / "in_order")
    merge(shards[::-1], SETS, tmp_path / "reversed")  # lines arrive out of order
    assert "routing/ser_experts" in names and "emotion_posteriors" in names
    for name in names:
        expected = _expected(shards, name)
        for dset in SETS:
            for out in ("in_order", "reversed"):
                text = (tmp_path / out / dset / name).read_text(encoding="utf-8")
                assert text == expected[dset], (out, dset, name)
    for dset in SETS:
        assert (tmp_path / "in_order" / dset / ".done").is_file()
        assert not (tmp_path / "in_order" / f"{dset}.tmp").exists()


def test_memory_is_bounded_by_a_shard_not_by_the_corpus(tmp_path):
    """The merge streams: it never holds all the shards' lines (it did: every
    line of every file of every set, before writing any)."""
    shards = _shards(tmp_path / "shards", 2000, 8, frames=100)
    total = sum(p.stat().st_size for s in shards for p in s.rglob("*") if p.is_file())
    tracemalloc.start()
    merge(shards, SETS, tmp_path / "decode")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total > 1_000_000
    assert peak < total / 4, (peak, total)


def test_a_bad_key_leaves_no_set_behind(tmp_path):
    shards = _shards(tmp_path / "shards", 5, 2)
    with open(shards[1] / "emotion", "a") as f:
        f.write("no_set_prefix A\n")
    out = tmp_path / "decode"
    with pytest.raises(MeritInputError, match="is not <set>__<utt>"):
        merge(shards, SETS, out)
    assert not out.exists() or not any(out.iterdir())
