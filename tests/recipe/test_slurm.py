"""The Slurm backend of the job runner, with stand-in ``sbatch`` and ``srun`` on
PATH that record what they are given and run the jobs here with the variables
Slurm sets: through ``cmd.sh`` (the partition follows what a job needs, every job
gets ``--cpus-per-task``, multi-node training is one job that ESPnet's distributed
code accepts) and through ``merit.sh`` (which stages submit which jobs)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest
from merit_testing import REPO, SPARSE_TINY, copy_recipe

from espnet2_merit.bin.merit_launch import main as launch

TEMPLATE = REPO / "egs2" / "TEMPLATE" / "merit1"

# sbatch: record, then run the script's tasks here (array tasks at once, as Slurm
# would) and wait for them, exiting with the highest code (sbatch --wait); a job
# named in $FAKE_SBATCH_SKIP is recorded only (it never runs: its logs stay absent).
FAKE_SBATCH = r"""#!{python}
import json, os, re, subprocess, sys
script = sys.argv[-1]
text = open(script).read()
opts = re.findall(r"^#SBATCH (\S+)", text, re.M) + sys.argv[1:-1]
with open({record!r}, "a") as f:
    call = {{"prog": "sbatch", "argv": sys.argv[1:], "script": text}}
    f.write(json.dumps(call) + "\n")
if "--partition=bogus" in opts:
    sys.exit("sbatch: error: invalid partition specified: bogus")
got = dict(o.split("=", 1) for o in opts if "=" in o)
print("7", flush=True)  # --parsable: the job id
if got["--job-name"] in os.environ.get("FAKE_SBATCH_SKIP", "").split():
    sys.exit(0)
nodes, per_node = int(got.get("--nodes", 1)), int(got.get("--ntasks-per-node", 1))
env = dict(os.environ, SLURM_JOB_ID="7", SLURM_NNODES=str(nodes),
           SLURM_NTASKS=str(nodes * per_node), SLURM_NTASKS_PER_NODE=str(per_node),
           SLURM_JOB_NODELIST=f"node[1-{{nodes}}]", SLURM_PROCID="0",
           SLURM_NODEID="0", SLURM_LOCALID="0")
if "--cpus-per-task" in got:
    env["SLURM_CPUS_PER_TASK"] = got["--cpus-per-task"]
tasks = [None]
if "--array" in got:
    first, last = map(int, got["--array"].split("-"))
    tasks = range(first, last + 1)
procs = []
for task in tasks:
    if task is not None:
        env["SLURM_ARRAY_TASK_ID"] = str(task)
    procs.append(subprocess.Popen(["bash", script], env=dict(env),
                                  stdout=subprocess.DEVNULL))
sys.exit(max(p.wait() for p in procs))
"""

# srun: record; with run=True start the command once per task (SLURM_NTASKS of the
# job) with the step's variables, as srun does on each node; else succeed.
FAKE_SRUN = r"""#!{python}
import json, os, subprocess, sys
args = sys.argv[1:]
with open({record!r}, "a") as f:
    keep = ("SLURM_CPUS_PER_TASK", "SRUN_CPUS_PER_TASK", "OMP_NUM_THREADS")
    env = {{k: os.environ.get(k) for k in keep}}
    f.write(json.dumps({{"prog": "srun", "argv": args, "env": env}}) + "\n")
if not {run}:
    sys.exit(0)
while args and args[0].startswith("-"):
    args.pop(0)
ntasks, nodes = int(os.environ["SLURM_NTASKS"]), int(os.environ["SLURM_NNODES"])
procs = []
for rank in range(ntasks):
    env = dict(os.environ, SLURM_PROCID=str(rank),
               SLURM_NODEID=str(rank * nodes // ntasks),
               SLURM_LOCALID=str(rank % (ntasks // nodes)), SLURM_STEP_ID="0",
               SLURM_STEP_NUM_NODES=str(nodes), SLURM_STEP_NUM_TASKS=str(ntasks),
               SLURM_STEP_NODELIST=os.environ["SLURM_JOB_NODELIST"])
    procs.append(subprocess.Popen(args, env=env))
sys.exit(max(p.wait() for p in procs))
"""

FAKE_SCANCEL = r"""#!{python}
import json, sys
with open({record!r}, "a") as f:
    f.write(json.dumps({{"prog": "scancel", "argv": sys.argv[1:]}}) + "\n")
"""


def fake_slurm(root: Path, run_srun: bool = True) -> Path:
    """Write the stand-in ``sbatch`` and ``srun`` into ``root/bin``; returns the
    file where they record their calls (one JSON object a line)."""
    record = root / "slurm_calls.jsonl"
    (root / "bin").mkdir(parents=True, exist_ok=True)
    fakes = (("sbatch", FAKE_SBATCH), ("srun", FAKE_SRUN), ("scancel", FAKE_SCANCEL))
    for name, text in fakes:
        path = root / "bin" / name
        path.write_text(
            text.format(python=sys.executable, record=str(record), run=run_srun)
        )
        path.chmod(0o755)
    return record


def calls(record: Path, prog: str = "sbatch") -> List[Dict]:
    if not record.exists():
        return []
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    return [r for r in rows if r["prog"] == prog]


def job_name(call: Dict) -> str:
    return next(
        line.split("=", 1)[1]
        for line in call["script"].splitlines()
        if line.startswith("#SBATCH --job-name=")
    )


def sbatch_opts(call: Dict) -> List[str]:
    """The options of one sbatch call: the script's #SBATCH lines and the
    command line's."""
    lines = call["script"].splitlines()
    return [ln.split()[1] for ln in lines if ln.startswith("#SBATCH ")] + call["argv"][
        :-1
    ]


@pytest.fixture
def slurm_env(tmp_path, monkeypatch):
    """Fake sbatch/srun on PATH; returns their record file."""
    record = fake_slurm(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return record


def cmd_sh(cwd: Path, line: str) -> subprocess.CompletedProcess:
    """Run ``line`` in bash after sourcing cmd.sh with the Slurm backend (as
    merit.sh does), in ``cwd``."""
    script = f"python={sys.executable}\n. {TEMPLATE / 'cmd.sh'}\n{line}\n"
    env = dict(os.environ, MERIT_CMD_BACKEND="slurm")
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_job_array_and_partition_by_need(tmp_path, slurm_env):
    """decode_cmd / cuda_cmd with --gpu 0 (CPU decoding, statistics) go to the CPU
    partition; JOB=1:4 is one array 1-4; every job gets --cpus-per-task and its
    threads follow it."""
    show = 'echo "threads $OMP_NUM_THREADS task $SLURM_ARRAY_TASK_ID" JOB'
    for cmd, gpu, name in (
        ("decode_cmd", 0, "dec"), ("decode_cmd", 1, "gdec"), ("cuda_cmd", 0, "stats")
    ):  # fmt: skip
        out = cmd_sh(
            tmp_path,
            f"${{{cmd}}} --gpu {gpu} JOB=1:4 log/{name}.JOB.log bash -c '{show}'",
        )
        assert out.returncode == 0, out.stderr
    submitted = calls(slurm_env)
    assert [job_name(c) for c in submitted] == ["dec", "gdec", "stats"]
    dec, gdec, stats = map(sbatch_opts, submitted)
    for opts in (dec, stats):
        assert "--partition=cpu" in opts and "--partition=gpu" not in opts
        assert not any(o.startswith("--gres") for o in opts)
    assert "--partition=gpu" in gdec and "--gres=gpu:1" in gdec
    assert "--array=1-4" in dec and "--cpus-per-task=2" in dec  # decode: 2 a shard
    assert "--cpus-per-task=8" in stats
    assert all(c["argv"][0] == "--wait" for c in submitted)
    for job in (1, 2, 3, 4):
        log = (tmp_path / "log" / f"dec.{job}.log").read_text()
        assert f"threads 2 task {job} {job}" in log and "# Ended (code 0)" in log
    # A GPU job's process has the task's CPUs (one process per GPU).
    assert "threads 2 task 1" in (tmp_path / "log" / "gdec.1.log").read_text()


def test_multi_node_training_is_one_job_espnet_accepts(tmp_path, slurm_env):
    """--gpu 2 --num_nodes 2: one job (no array) of 2 nodes, one task each, 2 GPUs
    per node, whose srun tasks ESPnet's distributed code (``--dist_launcher
    slurm``, multiprocessing) reads as node 0 and 1 of 2, 4 processes in all."""
    check = (
        "import argparse, os, sys; "
        "from espnet2.train import distributed_utils as du; "
        "a = argparse.Namespace(ngpu=2, multiprocessing_distributed=True, "
        "dist_launcher='slurm', dist_world_size=None, dist_rank=None, "
        "local_rank=None); du.resolve_distributed_mode(a); "
        "n = du.get_num_nodes(None, 'slurm'); "
        "r = du.get_node_rank(None, 'slurm'); t = os.environ['OMP_NUM_THREADS']; "
        "sys.stdout.write(f'node {r} of {n} world {a.ngpu * n} {a.distributed} "
        "{a.multiprocessing_distributed} threads {t}\\n')"
    )  # one write per line: the two nodes' tasks share the log, unbuffered
    out = cmd_sh(
        tmp_path,
        f"${{cuda_cmd}} --gpu 2 --num_nodes 2 exp/train.log srun --export=ALL "
        f'{sys.executable} -c "{check}"',
    )
    assert out.returncode == 0, out.stderr
    [call] = calls(slurm_env)
    opts = sbatch_opts(call)
    for want in ("--nodes=2", "--ntasks-per-node=1", "--gres=gpu:2",
                 "--cpus-per-task=8", "--partition=gpu"):  # fmt: skip
        assert want in opts, (want, opts)
    assert not any(o.startswith("--array") for o in opts)
    [srun] = calls(slurm_env, "srun")
    assert srun["argv"][0] == "--export=ALL"
    # srun gets the job's CPUs (Slurm >= 22.05 does not pass them on itself).
    assert srun["env"]["SRUN_CPUS_PER_TASK"] == "8"
    log = (tmp_path / "exp" / "train.log").read_text()
    for node in (0, 1):  # 8 CPUs shared by the 2 processes (GPUs) of a node
        assert f"node {node} of 2 world 4 True True threads 4" in log, log
    assert "# Ended (code 0)" in log


def test_slurm_errors_are_named(tmp_path, slurm_env):
    with pytest.raises(SystemExit, match="--num_nodes > 1 runs one job"):
        launch(["--backend", "slurm", "--num_nodes", "2", "JOB=1:2",
                str(tmp_path / "x.JOB.log"), "true"])  # fmt: skip
    with pytest.raises(SystemExit, match=r"sbatch .* failed \(code 1\) before any"):
        launch(["--backend", "slurm", "--slurm_opt=--partition=bogus",
                str(tmp_path / "x.log"), "true"])  # fmt: skip
    with pytest.raises(SystemExit, match=r"(?s)1 of 2 jobs failed; see .*t\.2\.log"
                       r".*The end of .*missing 42"):  # fmt: skip
        launch(["--backend", "slurm", "JOB=1:2", str(tmp_path / "t.JOB.log"),
                "bash", "-c", "[ JOB = 1 ] || { echo missing $((40 + 2)); exit 3; }",
                ])  # fmt: skip
    with pytest.raises(SystemExit):
        launch(["--backend", "slurm", "--num_threads", "0", str(tmp_path / "x.log"),
                "true"])  # fmt: skip


def test_interrupted_wait_cancels_the_job(tmp_path, slurm_env):
    """Ctrl-C while sbatch --wait waits: the job is cancelled (scancel of the id
    sbatch --parsable printed), as the local backend stops its jobs."""
    with open(tmp_path / "err", "w") as err:  # a file: the job's sleep holds it
        proc = subprocess.Popen(
            [sys.executable, "-m", "espnet2_merit.bin.merit_launch", "--backend",
             "slurm", str(tmp_path / "s.log"), "sleep", "5"],
            stderr=err, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.time() + 30
        while not (tmp_path / "s.log").exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the runner has read the job id by now
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        try:  # the stand-in job's sleep
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode != 0
    assert "interrupted; its jobs are stopped" in (tmp_path / "err").read_text()
    assert [c["argv"] for c in calls(slurm_env, "scancel")] == [["7"]]


def test_job_words_keep_their_quoting(tmp_path, slurm_env, monkeypatch):
    """JOB becomes the array task id in plain arguments too (no shell in between),
    quotes kept, and the job runs in the directory it was submitted from."""
    monkeypatch.chdir(tmp_path)
    launch(["--backend", "slurm", "JOB=3:4", str(tmp_path / "logs" / "t.JOB.log"),
            "touch", "it's JOB.txt"])  # fmt: skip
    assert (tmp_path / "it's 3.txt").exists() and (tmp_path / "it's 4.txt").exists()
    script = (tmp_path / "logs" / "q" / "t.sh").read_text()
    assert "#SBATCH --array=3-4" in script


STAGE_DATA = """#!/usr/bin/env bash
# Stage 1 of this test: the generated data dirs, as a recipe's data.sh writes them.
set -euo pipefail
mkdir -p data
cp -r {train} data/train
cp -r {valid} data/dev
cp -r {valid} data/test
cp {train}/emotion_list data/emotion_list
"""


def test_recipe_stages_submit_what_a_slurm_user_expects(tmp_path, data_dirs):
    """merit.sh with the Slurm backend: data preparation (stages 1, 3-5) runs as
    CPU jobs with --cpus-per-task ${nj}; step-1 training on 2 nodes x 2 GPUs is one
    job starting ESPnet's multi-node launch with srun (recorded, not run: no GPUs
    here); inference is one CPU array of 4 shards and scoring one CPU job (both
    recorded, not run: there is no trained model, and a job that never ran fails
    its stage, naming the logs)."""
    recipe = copy_recipe(REPO / "egs2" / "mini_msp_podcast" / "merit1", tmp_path / "r")
    train, valid = data_dirs
    (recipe / "local" / "data.sh").write_text(
        STAGE_DATA.format(train=train, valid=valid)
    )
    record = fake_slurm(tmp_path, run_srun=False)
    env = dict(
        os.environ,
        MERIT_PYTHON=sys.executable,
        MERIT_CMD_BACKEND="slurm",
        PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
    )
    options = [
        "--simulate_noise", "false", "--train_set", "train", "--valid_set", "dev",
        "--test_sets", "test", "--train_config", str(SPARSE_TINY),
        "--step1_config", "same", "--ngpu", "2", "--num_nodes", "2",
        "--nj", "1", "--inference_nj", "4",
    ]  # fmt: skip

    def merit(first, last, *more, skip=""):
        return subprocess.run(
            ["./merit.sh", "--stage", str(first), "--stop_stage", str(last),
             *options, *more],
            cwd=recipe, env=dict(env, FAKE_SBATCH_SKIP=skip),
            capture_output=True, text=True,
        )  # fmt: skip

    out = merit(1, 7, "--skip_stages", "2 6")
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    submitted = {job_name(c): sbatch_opts(c) for c in calls(record)}
    prep = ["data_prep", "format_wav", "filter", "labels"]
    assert list(submitted) == [*prep, "train"]
    for name in prep:
        opts = submitted[name]
        assert "--partition=cpu" in opts and "--cpus-per-task=1" in opts, name
        assert not any(o.startswith(("--array", "--gres")) for o in opts), name
        log = (recipe / "dump" / "log" / f"{name}.log").read_text()
        assert "# Ended (code 0)" in log, name
    # The work ran in the jobs: its outputs and done-markers are there.
    assert (recipe / "data" / ".done").is_file()
    for dset in ("train", "dev", "test"):
        assert (recipe / "dump" / "raw" / dset / ".done").is_file(), dset
    assert (recipe / "dump" / "raw" / "emotion_list").is_file()
    # Stage 7: one job of 2 nodes, one task and 2 GPUs each.
    train_opts = submitted["train"]
    for want in ("--nodes=2", "--ntasks-per-node=1", "--gres=gpu:2",
                 "--cpus-per-task=8", "--partition=gpu"):  # fmt: skip
        assert want in train_opts, (want, train_opts)
    assert not any(o.startswith("--array") for o in train_opts)
    [srun] = calls(record, "srun")
    words = srun["argv"]
    assert words[:4] == ["--export=ALL", sys.executable, "-m",
                         "espnet2_merit.bin.merit_train"]  # fmt: skip
    line = " ".join(words)
    assert "--ngpu 2 --multiprocessing_distributed true --dist_launcher slurm" in line
    step1 = recipe / "exp" / f"merit_{SPARSE_TINY.stem}_step1"
    assert f"--dist_init_method file://{step1.resolve()}/.dist_init." in line
    assert "--dist_backend" not in line  # gloo is for CPU-only training
    # Stage 9: one CPU array of 4 shards, JOB the array task id.
    exp = recipe / "exp" / f"merit_{SPARSE_TINY.stem}"
    exp.mkdir(parents=True)
    (exp / "valid.loss.best.pth").write_bytes(b"not run")
    more = ("--inference_model", "valid.loss.best.pth")
    out = merit(9, 9, *more, skip="inference")
    assert out.returncode != 0 and "4 of 4 jobs failed; see" in out.stderr
    inference = calls(record)[-1]
    opts = sbatch_opts(inference)
    assert job_name(inference) == "inference" and "--array=1-4" in opts
    assert "--partition=cpu" in opts and "--cpus-per-task=2" in opts
    assert not any(o.startswith("--gres") for o in opts)
    assert "espnet2_merit.bin.merit_inference --ngpu 0" in inference["script"]
    assert "keys.JOB" in inference["script"]
    # Stage 10: one CPU job running the scoring script.
    out = merit(10, 10, *more, skip="score")
    assert out.returncode != 0 and "decode/log/score.log" in out.stderr
    score = calls(record)[-1]
    opts = sbatch_opts(score)
    assert job_name(score) == "score" and "--partition=cpu" in opts
    assert not any(o.startswith(("--array", "--gres")) for o in opts)
    script = (exp / "decode" / "log" / "score.sh").read_text()
    assert script.count("espnet2_merit.bin.merit_score") == 2


def test_recipe_stage_failure_names_the_log(tmp_path):
    """A failing data-preparation job fails the stage (local backend), naming its
    log and showing its end; no done-marker is written."""
    recipe = copy_recipe(REPO / "egs2" / "mini_msp_podcast" / "merit1", tmp_path / "r")
    (recipe / "local" / "data.sh").write_text(
        "#!/usr/bin/env bash\necho 'data.sh: corpus not found' >&2\nexit 1\n"
    )
    env = dict(os.environ, MERIT_PYTHON=sys.executable, MERIT_CMD_BACKEND="local")
    out = subprocess.run(
        ["./merit.sh", "--stage", "1", "--stop_stage", "1",
         "--train_config", str(SPARSE_TINY)],
        cwd=recipe, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode != 0
    assert "1 of 1 jobs failed; see dump/log/data_prep.log" in out.stderr
    assert "data.sh: corpus not found" in out.stderr
    assert not (recipe / "data" / ".done").exists()
