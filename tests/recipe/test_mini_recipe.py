"""The whole mini recipe, stages 1-13, in a scratch copy of the recipe directory
(a smaller corpus, two test SNRs and one epoch per step, to fit the test budget; the
README's command runs the full-size mini recipe), with the three-task config (SE +
emotion classes + attributes) and the recipe's reverberant test sets: every task is
trained, decoded, scored and packed, and the packed model answers ``merit predict
--json``."""

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
from merit_testing import REPO, copy_recipe

RECIPE = REPO / "egs2" / "mini_msp_podcast" / "merit1"


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (bash .ci/install.sh installs it)",
)
def test_mini_recipe_end_to_end(tmp_path):
    recipe = copy_recipe(RECIPE, tmp_path / "mini")
    # The unpack cache of packed models goes under tmp_path, not the home dir.
    env = dict(os.environ, MERIT_PYTHON=sys.executable, XDG_CACHE_HOME=str(tmp_path))
    cmd = [
        "./run.sh",
        "--local_data_opts",
        "--num_train 40 --num_dev 12 --num_test 12 --num_unlabelled 6 --nj 2",
        "--test_snrs", "-5 10",
        "--step1_args", "--freeze_param frontend.upstream --max_epoch 1",
        "--train_args", "--max_epoch 1",
        "--train_config", "conf/tuning/train_sparse_merit_3task_tiny.yaml",
        "--hf_repo", "someone/merit-mini", "--hf_dry_run", "true",
    ]  # fmt: skip
    out = subprocess.run(cmd, cwd=recipe, env=env, capture_output=True, text=True)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    for stage in range(1, 14):
        assert f"Stage {stage}:" in log
    # run.sh trains with dynamic mixing, which names the experiment ..._dm
    exp = recipe / "exp" / "merit_train_sparse_merit_3task_tiny_dm"
    results = (exp / "RESULTS.md").read_text()
    for name in ("F1-macro", "CCC mean", "SSNR", "PESQ", "STOI", "unseen", "-5"):
        assert name in results, name
    assert "ATTR task" in results  # three routers: usage of each
    # The reverberant test sets (pyroomacoustics RIRs, seen and unseen rooms).
    for rooms in ("seen", "unseen"):
        assert f"### test1, reverberant ({rooms} rooms), seen noise" in results
    assert "### test1, seen noise: dry vs reverberant" in results
    # Routing statistics from the decoded routes (the merged manifest keeps the
    # frame shift they need).
    assert "| entropy | speech/noise TV |" in results
    # Step 2 starts from step 1's heads only (the release's protocol: a fresh MoE).
    command = (exp / "train.log").read_text().splitlines()[0]
    assert "--dynamic_mixing rir_scp=data/rir/train.scp" in command, command
    assert command.count("--init_param") == 1, command
    assert re.search(r"_step1/\S+\.pth:heads:heads ", command), command
    decoded = exp / "decode" / "test1_seen_snr-5"
    for name in ("emotion", "emotion_posteriors", "emotion_attr", "spk1.scp"):
        assert (decoded / name).is_file(), name
    assert list(exp.glob("**/*.png"))
    with zipfile.ZipFile(exp / "packed" / "model.zip") as z:
        assert any(n.endswith("meta.yaml") for n in z.namelist())
    hf = exp / "hf_someone_merit-mini"
    assert (hf / "README.md").is_file()
    wav = next((recipe / "downloads" / "mini_msp_podcast" / "Audios").glob("*.wav"))
    predict = subprocess.run(
        [sys.executable, "-m", "espnet2_merit.bin.merit_cli", "predict", str(wav),
         "--model", str(exp / "packed" / "model.zip"), "--json"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert predict.returncode == 0, predict.stderr[-3000:]
    row = json.loads(predict.stdout)  # stdout: one JSON line, nothing else
    assert row["label"] in ("A", "S", "H", "N")
    assert set(row["attributes"]) == {"arousal", "valence", "dominance"}
    assert set(row["tasks"]) == {"ser", "attr"}
    # Re-running with the same options skips every stage's work and keeps what
    # later stages stored (the noisy-input scores of a test set).
    cache = recipe / "dump" / "raw" / "test1_seen_snr-5" / "noisy_scores.json"
    assert cache.is_file()
    again = subprocess.run(
        ["./run.sh", "--stage", "1", "--stop_stage", "10", *cmd[1:11]],
        cwd=recipe, env=env, capture_output=True, text=True,
    )  # fmt: skip
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-3000:]
    assert "training again" not in log and "Epoch" not in log
    assert log.count("skip:") >= 10 and cache.is_file()
    # Scoring ran as a job (train_cmd): its messages are in its log.
    assert "scores are up to date" in (exp / "decode" / "log" / "score.log").read_text()
    # A changed option redoes that stage (training resumes from its checkpoint).
    more = [*cmd[1:7], "--train_args", "--max_epoch 2", *cmd[9:11]]
    again = subprocess.run(
        ["./run.sh", "--stage", "8", "--stop_stage", "8", *more],
        cwd=recipe, env=env, capture_output=True, text=True,
    )  # fmt: skip
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-3000:]
    assert "made from other options or inputs: training again" in log
    assert (exp / "2epoch.pth").is_file() and (exp / "1epoch.pth").is_file()

    # MTL-AUG with the unlabelled pool (Test3): stage 1 combines it with the
    # training set, stages 2-5 prepare only that set anew, training runs the
    # four tasks on it (the pool's labels "-"), inference leaves the auxiliary
    # tasks out.
    semi = [*cmd[1:9], "--train_config", "conf/tuning/train_mtl_aug_tiny.yaml",
            "--unlabelled_sets", "test3"]  # fmt: skip
    again = subprocess.run(
        ["./run.sh", "--stage", "1", "--stop_stage", "10", *semi],
        cwd=recipe, env=env, capture_output=True, text=True,
    )  # fmt: skip
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-3000:]
    emotion = (recipe / "dump" / "raw" / "train_semi_sim" / "emotion").read_text()
    assert emotion.count(" -\n") == 6 and len(emotion.splitlines()) == 46
    exp = recipe / "exp" / "merit_train_mtl_aug_tiny_dm"
    train_log = (exp / "train.log").read_text()
    assert "--augmentation noise_scp=" in train_log and "train_semi_sim" in train_log
    assert "aug_acc=" in train_log and "recon_loss=" in train_log
    manifest = json.loads(
        (exp / "decode" / "test1_seen_snr-5" / "outputs.json").read_text()
    )
    assert set(manifest["tasks"]) == {"se", "ser"}
