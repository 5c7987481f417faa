#!/usr/bin/env python3
"""Generate room impulse responses for the mini recipe: one directory per room type.

    python local/make_mini_rir.py --outdir downloads/mini_rir --num_per_type 8 \
        --seed 0

Simulates shoebox rooms with the image source method of pyroomacoustics
(``pip install pyroomacoustics``): for each RIR a room size, a target RT60, a source
and a microphone position are drawn, the wall absorption and reflection order that
give the RT60 by Sabine's formula are taken from ``pyroomacoustics.inverse_sabine``,
and the response is cut to ``MAX_SECONDS`` (its peak scaled to 1, 16 kHz mono float
wav). Room types (length x width x height in m, RT60 in s):

  office     3-4.5 x 3-4 x 2.5-3,   RT60 0.2-0.4
  living     4-6 x 3.5-5 x 2.4-2.8, RT60 0.3-0.5
  classroom  6-9 x 5-7 x 3-3.5,     RT60 0.4-0.6
  corridor   8-12 x 1.8-2.4 x 2.5-3, RT60 0.5-0.7

``corridor`` is meant to be held out as the *unseen* room type (the mini recipe's
``db.sh`` lists ``<outdir>/corridor`` in RIR_UNSEEN_DIRS and the other directories
in RIR_SEEN_DIRS): a long narrow room, a shape no training room has, with the
longest reverberation. Sabine's formula assumes a diffuse field, so the RT60 the
image method gives is longer than the target in elongated rooms; the target is
what ``rooms.tsv`` records.

The source and microphone are at least ``WALL_M`` from every wall and ``MIN_DIST_M``
apart (drawn again until they are). Each RIR is drawn from a generator seeded by
(--seed, type, index), so a seed gives identical samples on every run (not
identical bytes: libsndfile stamps a float wav's PEAK chunk with the time).
``<outdir>/rooms.tsv`` lists every RIR's room; ``<outdir>/.done`` records the
options, and a re-run with the same options skips.
"""

import argparse
import json
import logging
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.cli import entry_point
from espnet2_merit.utils.datadir import atomic_write_text, write_audio

PROG = "make_mini_rir.py"
FS = 16000
MAX_SECONDS = 0.8  # RIRs are cut here (RT60 <= 0.7 s targets)
WALL_M = 0.5  # least distance of the source and microphone from a wall
MIN_DIST_M = 1.0  # least source-microphone distance
UNSEEN_TYPE = "corridor"
# type -> ((length, width, height) ranges in m, RT60 range in s)
ROOM_TYPES: Dict[str, Tuple[Tuple[Tuple[float, float], ...], Tuple[float, float]]] = {
    "office": (((3.0, 4.5), (3.0, 4.0), (2.5, 3.0)), (0.2, 0.4)),
    "living": (((4.0, 6.0), (3.5, 5.0), (2.4, 2.8)), (0.3, 0.5)),
    "classroom": (((6.0, 9.0), (5.0, 7.0), (3.0, 3.5)), (0.4, 0.6)),
    "corridor": (((8.0, 12.0), (1.8, 2.4), (2.5, 3.0)), (0.5, 0.7)),
}
logger = logging.getLogger(PROG)


def draw_room(kind: str, index: int, seed: int) -> Dict:
    """The room of RIR ``index`` of a type: size, RT60, source and microphone."""
    sizes, rt60s = ROOM_TYPES[kind]
    rng = np.random.default_rng([seed, list(ROOM_TYPES).index(kind), index])
    dim = np.array([rng.uniform(*r) for r in sizes])
    rt60 = float(rng.uniform(*rt60s))
    while True:
        src, mic = (rng.uniform(WALL_M, dim - WALL_M) for _ in range(2))
        if np.linalg.norm(src - mic) >= MIN_DIST_M:
            break
    return {
        "dim": [round(float(x), 3) for x in dim],
        "rt60": round(rt60, 3),
        "source": [round(float(x), 3) for x in src],
        "mic": [round(float(x), 3) for x in mic],
    }


def simulate_rir(room: Dict) -> np.ndarray:
    """(K,) RIR of a room (image source method), K <= MAX_SECONDS * FS, peak 1."""
    import pyroomacoustics as pra

    absorption, max_order = pra.inverse_sabine(room["rt60"], room["dim"])
    shoebox = pra.ShoeBox(
        room["dim"],
        fs=FS,
        materials=pra.Material(absorption),
        max_order=max_order,
        air_absorption=False,
    )
    shoebox.add_source(room["source"])
    shoebox.add_microphone(room["mic"])
    shoebox.compute_rir()
    rir = np.asarray(shoebox.rir[0][0], dtype=np.float64)[: int(MAX_SECONDS * FS)]
    return rir / np.abs(rir).max()


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Generate RIR directories (one per room type) for the mini recipe",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--outdir", type=Path, required=True)
    parser.add_argument("--num_per_type", type=int, default=8)
    parser.add_argument(
        "--types",
        default=",".join(ROOM_TYPES),
        help=f"Comma-separated room types ({UNSEEN_TYPE} is the unseen one)",
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser


def generate(
    outdir: Path, num_per_type: int = 8, types: str = "", seed: int = 0
) -> Dict[str, List[str]]:
    """Write the RIR directories and rooms.tsv; returns type -> file paths."""
    kinds = [k.strip() for k in (types or ",".join(ROOM_TYPES)).split(",") if k]
    unknown = [k for k in kinds if k not in ROOM_TYPES]
    if unknown or not kinds or len(set(kinds)) != len(kinds):
        raise MeritInputError(
            f"--types {types!r}: expected distinct names of {','.join(ROOM_TYPES)}"
        )
    if num_per_type < 1:
        raise MeritInputError(f"--num_per_type {num_per_type}: need >= 1")
    files = {
        k: [str(outdir / k / f"{k}_{i:03d}.wav") for i in range(num_per_type)]
        for k in kinds
    }
    stamp = json.dumps(
        {"num": num_per_type, "types": kinds, "seed": seed, "v": 1, "fs": FS}
    )
    done = outdir / ".done"
    if done.is_file() and done.read_text() == stamp:
        logger.info(f"{outdir}: already generated with these options, skipping")
        return files
    done.unlink(missing_ok=True)
    rows = ["rir\ttype\tdim_m\trt60_s\tdistance_m"]
    for k in kinds:
        (outdir / k).mkdir(parents=True, exist_ok=True)
        for stale in (outdir / k).glob(f"{k}_*.wav"):  # of a larger earlier run
            if str(stale) not in files[k]:
                stale.unlink()
        for i, path in enumerate(files[k]):
            room = draw_room(k, i, seed)
            write_audio(path, simulate_rir(room), FS, "FLOAT")
            dist = np.linalg.norm(np.subtract(room["source"], room["mic"]))
            rows.append(
                f"{Path(path).stem}\t{k}\t{'x'.join(f'{x:g}' for x in room['dim'])}"
                f"\t{room['rt60']:g}\t{dist:.2f}"
            )
    atomic_write_text(outdir / "rooms.tsv", "\n".join(rows) + "\n")
    atomic_write_text(done, stamp)
    logger.info(
        f"wrote {num_per_type} RIRs of each of {', '.join(kinds)} under {outdir} "
        f"(unseen type: {UNSEEN_TYPE})"
    )
    return files


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point(PROG):
        generate(args.outdir, args.num_per_type, args.types, args.seed)


if __name__ == "__main__":
    main()
