"""Stage 9's bookkeeping: the shards of one job list over several test sets
(keys ``<set>__<utt>``) split back into one decode directory per set.

Every file a shard's manifest (``outputs.json``) lists is merged, so a set's
directory holds whatever the model's tasks produce; nothing is hard-wired to a
task. A set's directory appears complete or not at all (built as ``<set>.tmp``,
marked ``.done``, renamed).

Lines are streamed from the shards into the sets' files, one file name at a
time, so memory does not grow with the number of utterances: the stage script's
shards are contiguous slices of the sorted job list, so each set's lines arrive
sorted. A file whose lines do not (shards given out of order) is sorted
afterwards, holding that one file of that one set.
"""

import json
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.datadir import MANIFEST, atomic_write_text, iter_kaldi

SEP = "__"


def read_shard_manifests(shards: Sequence[Path]) -> Dict:
    """The shards' common manifest (all shards decode with one model)."""
    manifests = []
    for shard in shards:
        path = shard / MANIFEST
        if not path.is_file():
            raise MeritInputError(f"{path}: no such file (did the shard's job finish?)")
        manifests.append(json.loads(path.read_text(encoding="utf-8")))
    # Everything but the file list (tasks, frame shift) is the model's.
    common = [{k: v for k, v in m.items() if k != "files"} for m in manifests]
    if any(c != common[0] for c in common):
        raise MeritInputError(
            f"shards {list(map(str, shards))} decoded different tasks"
        )
    files = sorted({f for m in manifests for f in m["files"]})
    return {**common[0], "files": files}


def merge(
    shards: Sequence[Path],
    sets: Sequence[str],
    out_dir: Path,
    waveforms_from: Optional[Path] = None,
) -> List[str]:
    """Write ``out_dir/<set>/`` for every set; returns the merged file names.

    Args:
        shards: The jobs' output directories.
        sets: Set names (the key prefixes).
        out_dir: The decode directory.
        waveforms_from: A decode directory whose waveform tasks join each set's
            outputs (the SE pre-processing cascade: the SE model's enhanced
            speech is what this model classified, and is scored with it).
    """
    manifest = read_shard_manifests(shards)
    tmps = {s: out_dir / f"{s}.tmp" for s in sets}
    try:
        for tmp in tmps.values():
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        for name in manifest["files"]:
            _merge_file(shards, name, tmps)
        for dset, tmp in tmps.items():
            set_manifest = {
                **manifest,
                "tasks": dict(manifest["tasks"]),
                "files": list(manifest["files"]),
            }
            if waveforms_from is not None:
                _add_waveforms(waveforms_from / dset, tmp, set_manifest)
            text = json.dumps(set_manifest, indent=2) + "\n"
            atomic_write_text(tmp / MANIFEST, text)
            (tmp / ".done").touch()
    except BaseException:
        for tmp in tmps.values():  # no half-merged set is left behind
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    for dset, tmp in tmps.items():
        final = out_dir / dset
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    return manifest["files"]


def _merge_file(shards: Sequence[Path], name: str, tmps: Dict[str, Path]) -> None:
    """Stream the lines of file ``name`` of every shard into ``<set>.tmp/name``
    (keys without their ``<set>__`` prefix), sorted as a whole."""
    outs, last, in_order = {}, {}, {}
    try:
        for dset, tmp in tmps.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            outs[dset] = open(tmp / name, "w", encoding="utf-8")
            last[dset], in_order[dset] = "", True
        for shard in shards:
            path = shard / name
            if not path.is_file():
                continue  # a shard whose utterances all failed wrote nothing
            for _, key, value in iter_kaldi(path):
                dset, sep, utt = key.partition(SEP)
                if not sep or dset not in outs:
                    raise MeritInputError(f"{path}: key '{key}' is not <set>{SEP}<utt>")
                line = f"{utt} {value}\n"
                if line < last[dset]:
                    in_order[dset] = False
                last[dset] = line
                outs[dset].write(line)
    finally:
        for f in outs.values():
            f.close()
    for dset, tmp in tmps.items():
        if not in_order[dset]:
            with open(tmp / name, encoding="utf-8", newline="") as f:
                rows = [line + "\n" for line in f.read().split("\n")[:-1]]
            (tmp / name).write_text("".join(sorted(rows)), encoding="utf-8")


def _add_waveforms(source: Path, dest: Path, manifest: Dict) -> None:
    path = source / MANIFEST
    if not path.is_file():
        raise MeritInputError(f"{path}: no such file: decode that experiment first")
    theirs = json.loads(path.read_text(encoding="utf-8"))
    for task, target in theirs["tasks"].items():
        if target["kind"] != "waveform":
            continue
        if task in manifest["tasks"]:
            raise MeritInputError(f"{path}: task '{task}' is also this model's")
        shutil.copy(source / target["file"], dest / target["file"])
        manifest["tasks"][task] = target
        manifest["files"].append(target["file"])
