"""The recipe's job runner (what Kaldi's ``run.pl`` / ``slurm.pl`` are to ESPnet's
recipes): a command as one job or a job array, locally (the cores shared out
between parallel jobs) or as one Slurm job (``sbatch``, an ``--array`` for a job
array); usage in ``espnet2_merit.bin.merit_launch``.
"""

import argparse
import datetime
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

JOB_RANGE = re.compile(r"^JOB=(\d+):(\d+)$")


def split_command(
    argv: Sequence[str], parser: argparse.ArgumentParser
) -> Tuple[argparse.Namespace, Optional[range], str, List[str]]:
    """Options (parsed by ``parser``), job range (None: one job), log path,
    command words."""
    argv = list(argv)
    opts = []
    # Our options come first; the command's own options follow the log path.
    while argv and argv[0].startswith("--"):
        opts.append(argv.pop(0))
        if "=" not in opts[-1] and argv:
            opts.append(argv.pop(0))
    args = parser.parse_args(opts)
    jobs = None
    if argv and argv[0].startswith("JOB="):
        m = JOB_RANGE.match(argv.pop(0))
        if m is None or int(m.group(1)) > int(m.group(2)):
            parser.error("the job range must look like JOB=1:4")
        jobs = range(int(m.group(1)), int(m.group(2)) + 1)
    if len(argv) < 2:
        parser.error("expected LOG COMMAND [ARGS ...]")
    return args, jobs, argv[0], argv[1:]


def _with_job(words: Sequence[str], job: Optional[int]) -> List[str]:
    return list(words) if job is None else [w.replace("JOB", str(job)) for w in words]


def log_path(log: str, job: Optional[int]) -> Path:
    """The log of job number ``job`` (None: the one job)."""
    return Path(log if job is None else log.replace("JOB", str(job)))


def log_tail(path: str, lines: int = 6) -> str:
    """The last lines a job wrote to its log (its error, usually), without the
    runner's own closing lines."""
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    text = [t for t in text if not t.startswith(("# Accounting:", "# Ended ("))]
    return "\n".join(text[-lines:])


def _now() -> str:
    return datetime.datetime.now().strftime("%a %b %d %H:%M:%S %Y")


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def job_env(num_jobs: int) -> Tuple[dict, int]:
    """Environment of jobs that run at once, and each one's thread count.

    The cores are shared out: every job's PyTorch (OpenMP) pool would otherwise
    take all of them, and oversubscribed OpenMP spin-waits made two parallel
    inference jobs 35x slower here (1.4 s instead of 40 ms per utterance). An
    ``OMP_NUM_THREADS`` set by the user is kept.
    """
    env = dict(os.environ)
    if "OMP_NUM_THREADS" in env:
        return env, int(env["OMP_NUM_THREADS"])
    threads = max(1, len(os.sched_getaffinity(0)) // max(1, num_jobs))
    env.update({v: str(threads) for v in THREAD_VARS})
    return env, threads


def run_local(jobs: Optional[range], log: str, command: Sequence[str]) -> List[str]:
    """Run every job at once; return the logs of the failed ones."""
    running = []
    env, threads = job_env(len(jobs) if jobs else 1)
    try:
        for job in jobs or [None]:
            path = log_path(log, job)
            path.parent.mkdir(parents=True, exist_ok=True)
            line = shlex.join(_with_job(command, job))
            handle = path.open("w", encoding="utf-8")
            handle.write(f"# {line}\n# Started at {_now()}\n#\n")
            handle.flush()
            proc = subprocess.Popen(
                ["bash", "-c", line], stdout=handle, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, env=env,
            )  # fmt: skip
            running.append((proc, handle, path, time.time()))
        failed = []
        for proc, handle, path, start in running:
            code = proc.wait()
            handle.write(
                f"# Accounting: time={time.time() - start:.0f} threads={threads}\n"
            )
            handle.write(f"# Ended (code {code}) at {_now()}, elapsed time ")
            handle.write(f"{time.time() - start:.0f} seconds\n")
            handle.close()
            if code != 0:
                failed.append(str(path))
        return failed
    except BaseException:
        # Ctrl-C or a failure here: do not leave orphan jobs running.
        for proc, *_ in running:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        raise


def slurm_script(
    jobs: Optional[range],
    log: str,
    command: Sequence[str],
    gpu: int = 0,
    num_nodes: int = 1,
    num_threads: int = 1,
) -> Tuple[str, Path]:
    """The sbatch script of a job or job array, and where it goes (beside the logs).

    Each job is one task per node (``--ntasks-per-node=1``: the command runs once;
    a multi-node command starts its tasks itself, with ``srun``) with
    ``num_threads`` CPUs (``--cpus-per-task``) and ``gpu`` GPUs per node
    (``--gres=gpu:N``). One job (``jobs`` None) is a plain job, not an array.

    Args:
        jobs: Job numbers (an ``--array``), or None for one job.
        log: Log path; ``JOB`` in it (and in the command) is the array task id.
        command: The command's words.
        gpu: GPUs per node.
        num_nodes: Nodes of the job.
        num_threads: CPUs of each task (``--cpus-per-task``).

    Returns:
        The script's text and its path.
    """
    log_dir = Path(log).parent
    name = Path(log).name.replace("JOB", "").split(".")[0] or "job"
    header = ["#!/usr/bin/env bash", f"#SBATCH --job-name={name}"]
    if jobs is not None:
        header += [
            f"#SBATCH --array={jobs.start}-{jobs.stop - 1}",
            f"#SBATCH --output={log_dir}/q/{name}.%a.out",
        ]
    else:
        header.append(f"#SBATCH --output={log_dir}/q/{name}.out")
    header += [
        f"#SBATCH --nodes={num_nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --cpus-per-task={num_threads}",
    ]
    if gpu > 0:
        header.append(f"#SBATCH --gres=gpu:{gpu}")
    # The words travel quoted in a bash array; JOB becomes the array task id in
    # every word and in the log path at run time.
    subst = "" if jobs is None else (
        'cmd=("${cmd[@]//JOB/$SLURM_ARRAY_TASK_ID}")\n'
        'log=${log//JOB/$SLURM_ARRAY_TASK_ID}\n'
    )  # fmt: skip
    # Threads: the task's CPUs shared by its processes (ESPnet runs one per GPU).
    # srun steps get the task's CPUs too: since Slurm 22.05 srun does not take
    # them from the job by itself.
    body = f"""
cd {shlex.quote(os.getcwd())}
cpus=${{SLURM_CPUS_PER_TASK:-{num_threads}}}
export SRUN_CPUS_PER_TASK=$cpus
threads=$(( cpus / {max(1, gpu)} > 0 ? cpus / {max(1, gpu)} : 1 ))
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
cmd=({" ".join(shlex.quote(w) for w in command)})
log={shlex.quote(log)}
{subst}mkdir -p "$(dirname "$log")"
echo "# ${{cmd[*]}}" > "$log"
echo "# Started at $(date) on $(hostname) (job ${{SLURM_JOB_ID:-}})" >> "$log"
echo "#" >> "$log"
start=$(date +%s)
"${{cmd[@]}}" >> "$log" 2>&1
code=$?
elapsed=$(( $(date +%s) - start ))
echo "# Accounting: time=$elapsed threads=$threads cpus=$cpus" >> "$log"
echo "# Ended (code $code) at $(date), elapsed time $elapsed seconds" >> "$log"
exit $code
"""
    script = log_dir / "q" / f"{name}.sh"
    return "\n".join(header) + "\n" + body, script


def run_slurm(
    jobs: Optional[range],
    log: str,
    command: Sequence[str],
    gpu: int = 0,
    num_nodes: int = 1,
    num_threads: int = 1,
    sbatch_opts: Sequence[str] = (),
) -> List[str]:
    """Submit the job (array) with ``sbatch --wait``; return the logs of the
    failed jobs (a log without ``# Ended (code 0)``).

    ``sbatch_opts`` go on sbatch's command line, so they override the script's
    ``#SBATCH`` lines (see :func:`slurm_script` for the other arguments). The
    jobs' old logs are removed first (a log of an earlier run never passes for
    this one's), and an interrupted wait (Ctrl-C) cancels the job (``scancel``),
    as the local backend stops its jobs.
    """
    text, script = slurm_script(jobs, log, command, gpu, num_nodes, num_threads)
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(text, encoding="utf-8")
    paths = [log_path(log, job) for job in jobs or [None]]
    for path in paths:
        path.unlink(missing_ok=True)
    cmd = ["sbatch", "--wait", "--parsable", *sbatch_opts, str(script)]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    except FileNotFoundError:
        sys.exit("merit_launch: sbatch not found: is this a Slurm node? "
                 "(set cmd_backend=local in cmd.sh otherwise)")  # fmt: skip
    job_id = ""
    try:
        # --parsable: "<job id>[;<cluster>]" at submission, then the wait.
        job_id = proc.stdout.readline().strip().split(";")[0]
        proc.stdout.read()
        proc.wait()
    except BaseException:
        if job_id:
            subprocess.run(["scancel", job_id], check=False)
        proc.terminate()
        raise
    if proc.returncode != 0 and not any(p.exists() for p in paths):
        sys.exit(
            f"merit_launch: {shlex.join(cmd)} failed (code {proc.returncode}) "
            "before any job ran: see its message above (a partition, --gres or "
            "--cpus-per-task the cluster refuses? set them in cmd.sh)"
        )
    failed = []
    for path in paths:
        text = path.read_text(errors="replace") if path.exists() else ""
        if "# Ended (code 0)" not in text:
            failed.append(str(path))
    return failed
