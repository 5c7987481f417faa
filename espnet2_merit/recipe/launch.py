"""The recipe's job runner (what Kaldi's ``run.pl`` / ``slurm.pl`` are to ESPnet's
recipes): a command as one job or a job array, locally (the cores shared out
between parallel jobs) or as one Slurm ``sbatch --array``; usage in
``espnet2_merit.bin.merit_launch``.
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
            path = Path(log.replace("JOB", str(job)) if job else log)
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


def slurm_script(jobs: Optional[range], log: str, command: Sequence[str], gpu: int, num_nodes: int = 1) -> Tuple[str, Path]:  # fmt: skip
    """The sbatch script of a job array and where it goes (beside the logs)."""
    log_dir = Path(log).parent
    name = Path(log).name.replace("JOB", "").split(".")[0] or "job"
    first, last = (jobs.start, jobs.stop - 1) if jobs else (1, 1)
    header = [
        "#!/usr/bin/env bash",
        f"#SBATCH --job-name={name}",
        f"#SBATCH --array={first}-{last}",
        f"#SBATCH --output={log_dir}/q/{name}.%a.out",
    ]
    if gpu > 0:
        header.append(f"#SBATCH --gres=gpu:{gpu}")
    if num_nodes > 1:
        header += [f"#SBATCH --nodes={num_nodes}", "#SBATCH --ntasks-per-node=1"]
    # The words travel quoted in a bash array; JOB becomes the array task id in
    # every word and in the log path at run time.
    subst = "" if jobs is None else (
        'cmd=("${cmd[@]//JOB/$SLURM_ARRAY_TASK_ID}")\n'
        'log=${log//JOB/$SLURM_ARRAY_TASK_ID}\n'
    )  # fmt: skip
    body = f"""
cd {shlex.quote(os.getcwd())}
export OMP_NUM_THREADS=${{OMP_NUM_THREADS:-${{SLURM_CPUS_PER_TASK:-1}}}}
export MKL_NUM_THREADS=$OMP_NUM_THREADS
cmd=({" ".join(shlex.quote(w) for w in command)})
log={shlex.quote(log)}
{subst}mkdir -p "$(dirname "$log")"
echo "# ${{cmd[*]}}" > "$log"
echo "# Started at $(date) on $(hostname)" >> "$log"
start=$(date +%s)
"${{cmd[@]}}" >> "$log" 2>&1
code=$?
echo "# Ended (code $code) at $(date), elapsed time $(( $(date +%s) - start )) seconds" >> "$log"
exit $code
"""  # noqa: E501
    script = log_dir / "q" / f"{name}.sh"
    return "\n".join(header) + "\n" + body, script


def run_slurm(jobs, log, command, gpu, num_nodes, slurm_opts: Sequence[str]) -> List[str]:  # fmt: skip
    text, script = slurm_script(jobs, log, command, gpu, num_nodes)
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(text, encoding="utf-8")
    cmd = ["sbatch", "--wait", *slurm_opts, str(script)]
    try:
        subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)
    except FileNotFoundError:
        sys.exit("merit_launch: sbatch not found: is this a Slurm node? "
                 "(set cmd_backend=local in cmd.sh otherwise)")  # fmt: skip
    failed = []
    for job in jobs or [None]:
        path = Path(log.replace("JOB", str(job)) if job else log)
        text = path.read_text(errors="replace") if path.exists() else ""
        if "# Ended (code 0)" not in text:
            failed.append(str(path))
    return failed
