"""End to end: ESPnet's trainer on generated data with a tiny local WavLM."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from merit_testing import REPO, SPARSE_TINY

from espnet2_merit.bin.merit_train import main as train_main


def _final_losses(exp_dir):
    """Loss per split of the last epoch, from ESPnet's checkpoint reporter."""
    state = torch.load(
        exp_dir / "checkpoint.pth", map_location="cpu", weights_only=False
    )
    stats = state["reporter"]["stats"]
    last = max(stats)
    return {split: stats[last][split]["loss"] for split in ("train", "valid")}


@pytest.mark.slow
def test_demo_trains_one_epoch_from_a_non_editable_install(tmp_path):
    """merit_demo (one epoch of merit_train) from the package as a wheel installs
    it: the configs it needs ship as package data."""
    site = tmp_path / "site"
    install = subprocess.run(
        ["uv", "pip", "install", "-q", "-p", sys.executable, "--no-deps",
         "--no-build-isolation", "--target", str(site), str(REPO)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "espnet2_merit.bin.merit_demo", "--outdir", str(out)],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(site)),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = out / "exp"
    assert (exp / "1epoch.pth").exists() and (exp / "valid.loss.best.pth").exists()
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["fusion"] == "sparse_moe"
    assert config["config"].startswith(f"{site}/espnet2_merit/conf/")  # package data
    assert len(config["tasks"]["ser"]["loss_conf"]["class_weights"]) == 4
    losses = _final_losses(exp)
    assert all(math.isfinite(v) for v in losses.values()), losses
    # Model selection on the whole dev set's F1-macro (MeritTrainer).
    assert (exp / "valid.ser_f1_macro.best.pth").exists()
    stats = torch.load(exp / "checkpoint.pth", weights_only=False)["reporter"]
    valid = stats["stats"][1]["valid"]
    assert 0 <= valid["ser_f1_macro"] <= 1
    assert not any(k.startswith("suff") for k in valid)
    assert "1epoch results" in proc.stderr  # ESPnet's INFO logging is on


@pytest.mark.slow
def test_collect_stats_then_train_with_global_mvn(train_cmd, tmp_path):
    """The recipe's protocol: --collect_stats gives the waveform mean/variance that
    normalize: global_mvn uses (z-normalisation with training-set statistics)."""
    config = SPARSE_TINY
    common = train_cmd(config, "--ngpu", "0")
    stats_dir = tmp_path / "stats"
    train_main([*common, "--collect_stats", "true", "--output_dir", str(stats_dir)])
    stats = np.load(stats_dir / "train" / "feats_stats.npz")
    assert int(stats["count"]) > 20 * 16000  # every sample of every utterance
    exp = tmp_path / "exp"
    train_main(
        [
            *common,
            "--normalize",
            "global_mvn",
            "--normalize_conf",
            f"stats_file={stats_dir / 'train' / 'feats_stats.npz'}",
            "--output_dir",
            str(exp),
        ]
    )
    losses = _final_losses(exp)
    assert all(math.isfinite(v) for v in losses.values()), losses
