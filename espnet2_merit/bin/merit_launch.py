#!/usr/bin/env python3
"""Run a recipe command as one job or a job array, locally or on Slurm.

The recipe's job runner (what Kaldi's ``run.pl`` / ``slurm.pl`` are to ESPnet's
recipes), so that a recipe needs only ``pip install`` of this package:

    python -m espnet2_merit.bin.merit_launch [--backend local|slurm] [--gpu N]
        [--slurm_opt=--partition=gpu ...] [JOB=1:N] LOG COMMAND [ARGS ...]

``JOB=a:b`` runs the command once per job number, with every ``JOB`` in LOG and the
arguments replaced by that number. Each log starts with the command and ends with
``# Ended (code C)``; the runner exits non-zero, naming the failed logs, when any job
fails. ``local`` runs the jobs in parallel on this machine, sharing its cores out
(``OMP_NUM_THREADS``, unless set); ``slurm`` submits one ``sbatch --array`` and
waits for it (threads: ``--cpus-per-task``). A recipe picks the backend in ``cmd.sh``.
"""

import argparse
import sys
from typing import Optional, Sequence


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["local", "slurm"], default="local")
    parser.add_argument(
        "--gpu", type=int, default=0, help="GPUs per job (Slurm: --gres=gpu:N)"
    )
    parser.add_argument(
        "--num_nodes",
        type=int,
        default=1,
        help="Nodes per job, one task each (Slurm only; for multi-node training)",
    )
    parser.add_argument(
        "--slurm_opt",
        action="append",
        default=[],
        help="An sbatch option, e.g. --slurm_opt=--partition=gpu (repeatable)",
    )
    return parser


def main(cmd: Optional[Sequence[str]] = None):
    from espnet2_merit.recipe.launch import run_local, run_slurm, split_command

    parser = get_parser()
    args, jobs, log, command = split_command(
        sys.argv[1:] if cmd is None else cmd, parser
    )
    if args.backend == "local":
        if args.num_nodes > 1:
            sys.exit("merit_launch: --num_nodes > 1 needs --backend slurm (cmd.sh)")
        failed = run_local(jobs, log, command)
    else:
        failed = run_slurm(jobs, log, command, args.gpu, args.num_nodes, args.slurm_opt)
    if failed:
        total = len(jobs) if jobs else 1
        sys.exit(
            f"merit_launch: {len(failed)} of {total} jobs failed; see "
            + ", ".join(failed[:4])
            + (" ..." if len(failed) > 4 else "")
        )


if __name__ == "__main__":
    main()
