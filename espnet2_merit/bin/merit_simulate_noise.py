#!/usr/bin/env python3
"""Recipe stage 2b: noisy (optionally reverberant) copies of a data directory at a target SNR (``espnet2_merit.simulation.simulate``)."""

import argparse
from pathlib import Path

from espnet2_merit.simulation.mixing import REFERENCES
from espnet2_merit.utils.cli import entry_point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Mix a data directory's speech with noise at a target SNR",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data_dir", type=Path, required=True, help="Clean data dir (wav.scp)"
    )
    parser.add_argument(
        "--noise_scp",
        type=Path,
        required=True,
        help="Noise pool: '<noise_id> <path>' lines (merit_prepare_noise)",
    )
    snr = parser.add_mutually_exclusive_group(required=True)
    snr.add_argument("--snr", type=float, help="SNR in dB")
    snr.add_argument(
        "--snr_range",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        help="SNR drawn uniformly in [LO, HI] dB per utterance",
    )
    parser.add_argument("--outdir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nj", type=int, default=1, help="Parallel processes")
    parser.add_argument(
        "--subtype",
        choices=("PCM_16", "FLOAT"),
        default="PCM_16",
        help="Sample format of the written audio",
    )
    rir = parser.add_argument_group("reverberation (before the noise is added)")
    rir.add_argument(
        "--rir_scp",
        type=Path,
        default=None,
        help="RIR pool: '<rir_id> <path>' lines (merit_prepare_noise --kind rir); "
        "none: no reverberation",
    )
    rir.add_argument(
        "--rir_prob",
        type=float,
        default=1.0,
        help="Probability that an utterance is reverberant (with --rir_scp)",
    )
    rir.add_argument(
        "--rir_reference",
        choices=REFERENCES,
        default="dry",
        help="SE reference of a reverberant utterance: the dry speech, or its "
        "direct path + --rir_early_ms of early reflections",
    )
    rir.add_argument(
        "--rir_early_ms",
        type=float,
        default=50.0,
        help="Early part after the direct path (ms) of --rir_reference early",
    )
    return parser


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    with entry_point("merit_simulate_noise"):
        from espnet2_merit.simulation.simulate import simulate

        simulate(args)


if __name__ == "__main__":
    main()
