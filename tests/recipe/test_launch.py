"""The recipe's own infrastructure: option parser, local job runner, key splitting
(the Slurm backend: test_slurm.py)."""

import os
import subprocess
from pathlib import Path

import pytest

from espnet2_merit.bin.merit_launch import main as launch
from espnet2_merit.errors import MeritInputError
from espnet2_merit.recipe.split import split_keys

TEMPLATE = Path(__file__).resolve().parents[2] / "egs2" / "TEMPLATE" / "merit1"
PARSE = TEMPLATE / "scripts" / "utils" / "parse_options.sh"


def _parse(*args):
    script = (
        'nj=4; name=x; flag=false; help_message="usage: demo"\n'
        f". {PARSE}\n"
        'echo "$nj|$name|$flag|$*"\n'
    )
    return subprocess.run(
        ["bash", "-c", script, "demo", *args], capture_output=True, text=True
    )


def test_parse_options_sets_known_variables_and_keeps_the_rest():
    out = _parse("--nj", "8", "--name=a b", "--flag", "true", "pos1", "--x")
    assert out.returncode == 0 and out.stdout.strip() == "8|a b|true|pos1 --x"


@pytest.mark.parametrize(
    "args, message",
    [
        (("--bogus", "1"), "unknown option --bogus"),
        (("--flag", "yes"), "--flag takes true or false"),
        (("--nj",), "option --nj needs a value"),
    ],
)
def test_parse_options_errors(args, message):
    out = _parse(*args)
    assert out.returncode == 2 and message in out.stderr


def test_parse_options_help():
    out = _parse("--help")
    assert out.returncode == 0 and out.stdout.strip() == "usage: demo"


def test_local_job_array_substitutes_job_and_keeps_quoting(tmp_path):
    launch(["JOB=1:3", str(tmp_path / "log.JOB"), "bash", "-c",
            f'printf "%s" "$0" > {tmp_path}/out.JOB', "two words JOB"])  # fmt: skip
    for job in (1, 2, 3):
        assert (tmp_path / f"out.{job}").read_text() == f"two words {job}"
        log = (tmp_path / f"log.{job}").read_text()
        assert log.startswith("# bash -c") and "# Ended (code 0)" in log


def test_local_failure_names_the_log(tmp_path):
    with pytest.raises(SystemExit, match=r"1 of 2 jobs failed; see .*log\.2"):
        launch(
            ["JOB=1:2", str(tmp_path / "log.JOB"), "bash", "-c", "exit $((JOB - 1))"]
        )
    assert "# Ended (code 1)" in (tmp_path / "log.2").read_text()


def test_local_jobs_share_the_cores(tmp_path, monkeypatch):
    """Parallel jobs each get cores / jobs threads (oversubscribed OpenMP pools made
    parallel inference 35x slower); a user's OMP_NUM_THREADS is kept."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    show = 'echo "$OMP_NUM_THREADS $MKL_NUM_THREADS" > ' + str(tmp_path / "t.JOB")
    launch(["JOB=1:4", str(tmp_path / "log.JOB"), "bash", "-c", show])
    assert (tmp_path / "t.1").read_text().split() == ["2", "2"]
    assert "threads=2" in (tmp_path / "log.4").read_text()
    launch([str(tmp_path / "one.log"), "bash", "-c", show.replace("JOB", "x")])
    assert (tmp_path / "t.x").read_text().split() == ["8", "8"]
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    launch(["JOB=1:4", str(tmp_path / "log.JOB"), "bash", "-c", show])
    assert (tmp_path / "t.4").read_text().split()[0] == "3"


def test_single_job_and_multi_node_needs_slurm(tmp_path):
    launch(["--gpu", "1", str(tmp_path / "one.log"), "echo", "hi"])
    assert "hi" in (tmp_path / "one.log").read_text()
    with pytest.raises(SystemExit, match="--num_nodes > 1 needs --backend slurm"):
        launch(["--num_nodes", "2", str(tmp_path / "x.log"), "true"])


def test_split_keys(tmp_path):
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"u{i:02d} /a/{i}.wav\n" for i in range(10)))
    assert split_keys(scp, 3, tmp_path / "keys") == 3
    shards = [(tmp_path / "keys" / f"keys.{n}").read_text().split() for n in (1, 2, 3)]
    assert [len(s) for s in shards] == [3, 3, 4]
    assert sum(shards, []) == [f"u{i:02d}" for i in range(10)]
    assert split_keys(scp, 50, tmp_path / "keys") == 10  # stale keys.* removed
    assert len(list((tmp_path / "keys").glob("keys.*"))) == 10
    scp.write_text("a x\na y\n")
    with pytest.raises(MeritInputError, match="key 'a' repeated"):
        split_keys(scp, 2, tmp_path / "keys")
