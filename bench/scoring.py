#!/usr/bin/env python3
"""Scoring throughput: the recipe's SE scoring (stage 10, ``merit_score``) against
calling the same libraries one file at a time in one process.

Generates ``--num_utts`` (1,000) utterances of ``--seconds`` (4) s: clean harmonic
speech, a noisy mixture at 5 dB and an "enhanced" signal (clean + 0.3 x noise), as a
reference data dir (``wav.scp``, ``spk1.scp``) and a decoded set (``spk1.scp``).
Every method computes the same numbers, segmental SNR, SI-SDR, PESQ-wb and STOI of
the enhanced output and of the noisy input, and the benchmark checks that they agree:

- one file at a time: a plain loop reading each file with soundfile and calling
  ``pesq.pesq``, ``pystoi.stoi`` and our SSNR / SI-SDR functions;
- ``merit_score --nj 1`` and ``--nj N`` (a process pool, one BLAS thread each);
- ``merit_score --nj N`` for a second system on the same set, when the noisy
  input's scores come from the set's cache (``noisy_scores.json``).

    .venv/bin/python bench/scoring.py --out bench/results/scoring.md  # 8 min, 2 cores
"""

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
from pesq import pesq
from pystoi import stoi

from espnet2_merit.merit.heads.targets import WaveformTarget
from espnet2_merit.scoring.se import segmental_snr, si_sdr
from espnet2_merit.scoring.set_scoring import MANIFEST, read_per_utt, score_set
from espnet2_merit.utils.synthetic import voice

FS = 16000
TASK = "se"  # the decoded set's one task: enhanced speech (spk1.scp)


def make_sets(root: Path, num: int, seconds: float, seed: int = 0):
    """Reference dir (noisy wav.scp, clean spk1.scp) and a decoded set (the
    enhanced spk1.scp and the manifest of its one waveform task, as
    ``espnet2_merit.inference.decode_dir`` writes it)."""
    rng = np.random.default_rng(seed)
    (root / "wav").mkdir(parents=True)
    scp = {"wav.scp": [], "spk1.scp": [], "enh.scp": []}
    for i in range(num):
        utt = f"utt{i:05d}"
        clean = voice("ASHN"[i % 4], seconds, FS, rng).astype(np.float64)
        noise = rng.standard_normal(len(clean))
        noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (5 / 10))
        for name, x, key in (
            ("clean", clean, "spk1.scp"),
            ("noisy", clean + noise, "wav.scp"),
            ("enh", clean + 0.3 * noise, "enh.scp"),
        ):
            path = root / "wav" / f"{utt}_{name}.wav"
            soundfile.write(path, x, FS, subtype="FLOAT")
            scp[key].append(f"{utt} {path}\n")
    ref, hyp = root / "ref", root / "hyp"
    ref.mkdir()
    hyp.mkdir()
    (ref / "wav.scp").write_text("".join(scp["wav.scp"]))
    (ref / "spk1.scp").write_text("".join(scp["spk1.scp"]))
    target = WaveformTarget("speech_ref1")
    (hyp / target.file_name).write_text("".join(scp["enh.scp"]))
    manifest = {"tasks": {TASK: target.describe()}, "files": [target.file_name]}
    (hyp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return ref, hyp


def one_at_a_time(ref: Path, hyp: Path) -> dict:
    """The same metrics with the libraries called file by file."""

    def table(path):
        return dict(line.split(maxsplit=1) for line in path.read_text().splitlines())

    clean_scp, noisy_scp = table(ref / "spk1.scp"), table(ref / "wav.scp")
    enh_scp = table(hyp / "spk1.scp")
    out = {}
    for utt in sorted(clean_scp):
        clean, _ = soundfile.read(clean_scp[utt])
        row = {}
        for suffix, path in (("", enh_scp[utt]), ("_noisy", noisy_scp[utt])):
            x, _ = soundfile.read(path)
            row["ssnr" + suffix] = segmental_snr(clean, x, FS)
            row["sisdr" + suffix] = si_sdr(clean, x)
            row["pesq" + suffix] = pesq(FS, clean, x, "wb")
            row["stoi" + suffix] = stoi(clean, x, FS)
        out[utt] = row
    return out


def from_score_dir(score_dir: Path) -> dict:
    """{utt: {metric[_noisy]: value}} of the task's per_utt.tsv columns."""
    _, rows = read_per_utt(score_dir / "per_utt.tsv")
    prefix = f"{TASK}_"
    return {
        u: {k[len(prefix) :]: float(v) for k, v in r.items() if k.startswith(prefix)}
        for u, r in rows.items()
    }


def max_difference(a: dict, b: dict) -> float:
    """Largest difference between two {utt: {metric: value}} (same metrics)."""
    if a.keys() != b.keys() or any(a[u].keys() != b[u].keys() for u in a):
        raise ValueError("the methods scored different utterances or metrics")
    return max(abs(a[u][k] - b[u][k]) for u in a for k in a[u])


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num_utts", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--nj", type=int, default=2)
    parser.add_argument("--out", type=Path, help="markdown to write")
    return parser


def main():
    args = get_parser().parse_args()
    rows = []
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        ref, hyp = make_sets(Path(tmp), args.num_utts, args.seconds)

        def timed(name, fn):
            t0 = time.perf_counter()
            result = fn()
            rows.append((name, time.perf_counter() - t0))
            print(f"{name}: {rows[-1][1]:.1f} s", flush=True)
            return result

        base = timed("one file at a time, one process", lambda: one_at_a_time(ref, hyp))
        diffs = []
        for name, nj in (
            ("merit_score --nj 1", 1),
            (f"merit_score --nj {args.nj}", args.nj),
        ):
            (ref / "noisy_scores.json").unlink(missing_ok=True)
            out = Path(tmp) / f"score_nj{nj}"
            timed(name, lambda: score_set(ref, hyp, out, nj=nj))
            diffs.append(max_difference(base, from_score_dir(out)))
        out = Path(tmp) / "score_cached"
        timed(
            f"merit_score --nj {args.nj}, noisy input cached (next system on the set)",
            lambda: score_set(ref, hyp, out, nj=args.nj),
        )
        diffs.append(max_difference(base, from_score_dir(out)))
    base_s = rows[0][1]
    lines = [
        f"- date: {datetime.datetime.now():%Y-%m-%d %H:%M}; {platform.machine()} CPU, "
        f"{os.cpu_count()} cores",
        f"- {args.num_utts} utterances x {args.seconds:g} s at 16 kHz; per utterance "
        "SSNR, SI-SDR, PESQ-wb and STOI of the enhanced output and of the noisy input "
        f"(largest difference between the methods' numbers: {max(diffs):.2g})",
        "",
        "| method | wall time (s) | ms per utterance | speed-up |",
        "|---|---|---|---|",
    ]
    for name, sec in rows:
        lines.append(
            f"| {name} | {sec:.1f} | {1000 * sec / args.num_utts:.1f} | "
            f"{base_s / sec:.2f}x |"
        )
    lines.append(
        f"\nWall time (with generating the audio): {time.time() - start:.0f} s"
    )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
