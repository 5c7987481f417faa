"""Challenge submission files for test sets whose labels are withheld.

One writer per challenge format, registered in ``FORMATS``. ``msp_podcast``: the
MSP-Podcast emotion challenges (Odyssey 2024, Interspeech 2025), whose organisers'
baseline (github.com/msplabresearch/MSP-Podcast_Challenge: eval_cat_ser_weighted.py,
eval_dim_ser_test3.py) writes a CSV with the header ``FileName,EmoClass`` for
categories and ``FileName,EmoAct,EmoVal,EmoDom`` for attributes (each clipped to the
1-7 scale of the labels), one row per audio file name, sorted by file name.
"""

import csv
import io
from pathlib import Path
from typing import Callable, Dict, List

from espnet2_merit.errors import MeritInputError
from espnet2_merit.scoring.set_scoring import read_floats
from espnet2_merit.utils.datadir import atomic_write_text, read_kaldi

MSP_ATTRIBUTES = {"arousal": "EmoAct", "valence": "EmoVal", "dominance": "EmoDom"}


def _csv(header: List[str], rows: List[List]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(sorted(rows))
    return buf.getvalue()


def msp_podcast(hyp_dir: Path, target: Dict, keys: List[str]) -> str:
    """The MSP-Podcast challenge CSV of one task's predictions."""
    path = hyp_dir / target["file"]
    if target["kind"] == "label":
        table = read_kaldi(path)
        rows = [[f"{k}.wav", table[k]] for k in keys]
        return _csv(["FileName", "EmoClass"], rows)
    if target["kind"] == "vector":
        names = list(target.get("names") or [])
        unknown = [n for n in names if n not in MSP_ATTRIBUTES]
        if unknown:
            raise MeritInputError(
                f"{path}: values {unknown} are not MSP-Podcast attributes "
                f"({', '.join(MSP_ATTRIBUTES)})"
            )
        values = read_floats(path, keys).clip(1.0, 7.0)
        order = [names.index(n) for n in MSP_ATTRIBUTES]
        rows = [
            [f"{k}.wav", *(f"{v[i]:.4f}" for i in order)] for k, v in zip(keys, values)
        ]
        return _csv(["FileName", *MSP_ATTRIBUTES.values()], rows)
    raise MeritInputError(
        f"{path}: the MSP-Podcast challenge takes no {target['kind']}"
    )


FORMATS: Dict[str, Callable[[Path, Dict, List[str]], str]] = {
    "msp_podcast": msp_podcast,
}


def write_submissions(
    hyp_dir: Path, out_dir: Path, tasks: Dict[str, Dict], keys: List[str], fmt: str
) -> List[Path]:
    """``<out_dir>/submission_<task>.csv`` for every task (label or vector) of a
    set without references; returns the files written."""
    if fmt not in FORMATS:
        raise MeritInputError(f"--submission '{fmt}': one of {list(FORMATS)}")
    written = []
    for task, target in tasks.items():
        if target["kind"] == "waveform":
            continue
        path = out_dir / f"submission_{task}.csv"
        atomic_write_text(path, FORMATS[fmt](hyp_dir, target, keys))
        written.append(path)
    return written
