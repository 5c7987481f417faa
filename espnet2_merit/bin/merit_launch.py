#!/usr/bin/env python3
"""Run a recipe command as one job or a job array, locally or on Slurm.

The recipe's job runner (what Kaldi's ``run.pl`` / ``slurm.pl`` are to ESPnet's
recipes), so that a recipe needs only ``pip install`` of this package:

    python -m espnet2_merit.bin.merit_launch [--backend local|slurm] [--gpu N]
        [--num_threads N] [--num_nodes N] [--slurm_opt=--mem=8G ...]
        [--slurm_gpu_opt=--partition=gpu ...] [--slurm_cpu_opt=--partition=cpu ...]
        [JOB=1:N] LOG COMMAND [ARGS ...]

``JOB=a:b`` runs the command once per job number, with every ``JOB`` in LOG and the
arguments replaced by that number. Each log starts with the command and ends with
``# Ended (code C)``; the runner exits non-zero, naming the failed logs, when any job
fails. A recipe picks the backend in ``cmd.sh``.

``local`` runs the jobs in parallel on this machine, sharing its cores out
(``OMP_NUM_THREADS``, unless set; ``--num_threads`` is not used, as with Kaldi's
``run.pl``). ``slurm`` submits one ``sbatch --wait`` and waits for it (Ctrl-C
cancels it): a job array (``--array=a-b``) for ``JOB=a:b``, a plain job otherwise.
Every job is one task per node with ``--cpus-per-task`` = ``--num_threads`` and
``--gres=gpu:N`` for ``--gpu N`` (GPUs per node); its OpenMP/MKL threads follow
the CPUs it gets (shared by its processes: ESPnet runs one per GPU). Options of
sbatch:
``--slurm_opt`` always, then ``--slurm_gpu_opt`` for a job with GPUs or
``--slurm_cpu_opt`` for one without (the partition, by what the job needs, not by
which command submitted it: statistics and CPU decoding go to the CPU partition);
later ones win. ``--num_nodes N`` (one job) asks for N nodes, one task each: the
command starts its tasks with ``srun`` (ESPnet's multi-node launcher, as
``merit.sh`` does for training).
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
        "--gpu", type=int, default=0, help="GPUs per job and node (--gres=gpu:N)"
    )
    parser.add_argument(
        "--num_threads",
        type=int,
        default=1,
        help="CPUs per job and node (Slurm: --cpus-per-task; local: not used)",
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
        help="An sbatch option of every job, e.g. --slurm_opt=--mem=8G (repeatable)",
    )
    parser.add_argument(
        "--slurm_gpu_opt",
        action="append",
        default=[],
        help="An sbatch option of a job with --gpu > 0, e.g. "
        "--slurm_gpu_opt=--partition=gpu (repeatable)",
    )
    parser.add_argument(
        "--slurm_cpu_opt",
        action="append",
        default=[],
        help="An sbatch option of a job with --gpu 0, e.g. "
        "--slurm_cpu_opt=--partition=cpu (repeatable)",
    )
    return parser


def main(cmd: Optional[Sequence[str]] = None):
    from espnet2_merit.recipe.launch import (
        log_tail,
        run_local,
        run_slurm,
        split_command,
    )

    parser = get_parser()
    args, jobs, log, command = split_command(
        sys.argv[1:] if cmd is None else cmd, parser
    )
    for name, least in (("gpu", 0), ("num_threads", 1), ("num_nodes", 1)):
        if getattr(args, name) < least:
            parser.error(f"--{name} must be >= {least}, not {getattr(args, name)}")
    if args.num_nodes > 1 and jobs is not None:
        sys.exit(
            "merit_launch: --num_nodes > 1 runs one job (one task per node), "
            f"not a job array {jobs.start}:{jobs.stop - 1}"
        )
    if args.backend == "local" and args.num_nodes > 1:
        sys.exit("merit_launch: --num_nodes > 1 needs --backend slurm (cmd.sh)")
    try:
        if args.backend == "local":
            failed = run_local(jobs, log, command)
        else:
            opts = args.slurm_opt + (
                args.slurm_gpu_opt if args.gpu > 0 else args.slurm_cpu_opt
            )
            failed = run_slurm(
                jobs, log, command, args.gpu, args.num_nodes, args.num_threads, opts
            )
    except KeyboardInterrupt:
        sys.exit(f"merit_launch: interrupted; its jobs are stopped (log: {log})")
    if failed:
        total = len(jobs) if jobs else 1
        tail = log_tail(failed[0])
        sys.exit(
            f"merit_launch: {len(failed)} of {total} jobs failed; see "
            + ", ".join(failed[:4])
            + (" ..." if len(failed) > 4 else "")
            + (f"\nThe end of {failed[0]}:\n{tail}" if tail else "")
        )


if __name__ == "__main__":
    main()
