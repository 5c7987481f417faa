"""Data-parallel training on CPU: two ranks (torchrun, gloo) through ESPnet's own
distributed options, with the shipped three-task sparse config (whose SSL model
is trained, CNN frozen): it trains, is killed and resumes on two ranks; the
ranks' batches are disjoint; only rank 0 writes; and the whole-dev-set F1-macro
and CCC it reports equal a single process's on the same weights."""

import sys
from pathlib import Path

import pytest
import torch
from espnet2.train.reporter import Reporter
from merit_testing import THREE_TASK_TINY, data_args, kill_when

from espnet2_merit.bin.merit_train import main as train_main
from espnet2_merit.utils.checkpoint import load_checkpoint

NAMES = ("speech", "speech_ref1", "emotion", "emotion_attr")
WORKER = Path(__file__).with_name("ddp_worker.py")


def _options(tiny_wavlm, data_dirs, out: Path, *extra) -> list:
    train, valid = data_dirs
    return [
        "--config", str(THREE_TASK_TINY),
        "--frontend_conf", f"path_or_url={tiny_wavlm}",
        "--emotion_list", str(train / "emotion_list"),
        "--output_dir", str(out),
        "--ngpu", "0",
        "--resume", "true",
        "--use_matplotlib", "false",
        "--use_tensorboard", "false",
        *data_args(train, valid, NAMES),
        *extra,
    ]  # fmt: skip


def _torchrun(options: list) -> list:
    # --ngpu 0 picks the gloo backend (MeritTask); torchrun sets RANK, WORLD_SIZE
    # and MASTER_ADDR/PORT, which ESPnet's env:// initialisation reads.
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc_per_node", "2", str(WORKER), *options,
    ]  # fmt: skip


def _reporter(exp: Path) -> Reporter:
    reporter = Reporter()
    reporter.load_state_dict(load_checkpoint(exp / "checkpoint.pth")["reporter"])
    return reporter


def _batches(record: Path, rank: int, epoch: int) -> list:
    lines = (record / f"batches.{rank}.{epoch}").read_text().splitlines()
    return [line.split() for line in lines]


def test_two_ranks_train_resume_and_report_the_single_process_metrics(
    tiny_wavlm, data_dirs, tmp_path, monkeypatch
):
    exp, record = tmp_path / "exp", tmp_path / "record"
    record.mkdir()
    monkeypatch.setenv("RECORD_DIR", str(record))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cmd = _torchrun(_options(tiny_wavlm, data_dirs, exp, "--max_epoch", "2"))

    # Killed once epoch 1 is saved (during epoch 2), then resumed.
    killed = kill_when(cmd, tmp_path, lambda: (exp / "checkpoint.pth").exists())
    assert killed, (tmp_path / "kill.log").read_text()[-3000:]
    assert _reporter(exp).get_epoch() == 1
    assert kill_when(cmd, tmp_path, lambda: False) is False
    log = (tmp_path / "kill.log").read_text()
    assert "resumed from" in log and "2epoch results" in log, log[-3000:]
    assert ":0/2]" in log and ":1/2]" not in log  # rank 1 logs errors only
    reporter = _reporter(exp)
    assert reporter.get_epoch() == 2

    # Each step's batch is split between the ranks; each epoch covers the set.
    utts = set((data_dirs[0] / "utt2spk").read_text().split()[::2])
    for epoch in (1, 2):
        rank0, rank1 = _batches(record, 0, epoch), _batches(record, 1, epoch)
        assert len(rank0) == len(rank1) > 1
        for a, b in zip(rank0, rank1):
            assert a and b and not set(a) & set(b)
        assert set(sum(rank0 + rank1, [])) == utts
    # Only rank 0 saves (checkpoints, epoch files).
    assert not (record / "saves.1").exists()
    assert "checkpoint.pth.tmp" in (record / "saves.0").read_text()

    # One process validates the final weights (lr 0: the epoch changes nothing).
    weights = tmp_path / "final.pth"
    torch.save(load_checkpoint(exp / "checkpoint.pth")["model"], weights)
    monkeypatch.delenv("RECORD_DIR")
    ref = tmp_path / "ref"
    train_main(
        _options(tiny_wavlm, data_dirs, ref, "--max_epoch", "1")
        + ["--init_param", str(weights), "--optim_conf", "lr=0.0"]
    )
    single = _reporter(ref)
    for key in ("ser_f1_macro", "attr_ccc"):
        two = reporter.get_value("valid", key, epoch=2)
        one = single.get_value("valid", key, epoch=1)
        assert two == pytest.approx(one, abs=1e-5), key


def test_multiprocessing_distributed_on_cpu_names_the_launcher(
    tiny_wavlm, data_dirs, tmp_path, monkeypatch
):
    monkeypatch.delenv("RANK", raising=False)
    options = _options(tiny_wavlm, data_dirs, tmp_path / "exp")
    with pytest.raises(SystemExit, match="start the processes with torchrun"):
        train_main(
            options + ["--multiprocessing_distributed", "true"]
            + ["--dist_world_size", "2"]
        )  # fmt: skip
    assert not (tmp_path / "exp").exists()
