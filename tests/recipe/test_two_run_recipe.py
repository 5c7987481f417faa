"""The two-run protocol through merit.sh (Interspeech 2025 challenge system, arXiv
2508.07282): ``--branch_configs`` trains a speech SER run and a text SER run in
stage 7, stage 8 trains the fused config from their best checkpoints
(``--branch_init``) with their backbones frozen, stages 9-10 decode and score it;
and the option errors, which are found before anything trains.

The corpus is the generated data dirs (with transcripts), laid out by a stage-1
script that also writes the tiny WavLM and RoBERTa with the mini recipe's own
``local/data.sh`` lines, so the tiny configs' ``exp/ssl`` and ``exp/text`` paths
are the recipe's."""

import os
import subprocess
import sys

import pytest
import torch
from merit_testing import MINI_RECIPE, copy_recipe, mini_recipe_on

SPEECH = "conf/tuning/train_ser_only_tiny.yaml"
TEXT = "conf/tuning/train_text_only_tiny.yaml"
FUSED = "conf/tuning/train_speech_text_fusion_tiny.yaml"
BEST = "valid.ser_f1_macro.best.pth"
BRANCHES = ["--branch_configs", f"speech={SPEECH} text={TEXT}",
            "--branch_init", "speech=frontend text=text_frontend"]  # fmt: skip


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, data_dirs):
    """A scratch copy of the mini recipe whose stage 1 lays out the generated data,
    prepared by stages 1-5 (no noise simulation: the pairs are the data dirs')."""
    root = mini_recipe_on(data_dirs, tmp_path_factory.mktemp("two_run") / "r")
    out = _merit(root, 1, 5)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return root


def _merit(recipe, first, last, *more):
    env = dict(os.environ, MERIT_PYTHON=sys.executable, MERIT_CMD_BACKEND="local")
    env["OMP_NUM_THREADS"] = "1"
    cmd = ["./merit.sh", "--stage", str(first), "--stop_stage", str(last),
           "--simulate_noise", "false", "--train_set", "train", "--valid_set", "dev",
           "--test_sets", "test", "--train_config", FUSED,
           "--ngpu", "0", "--nj", "1", "--inference_nj", "1", *more]  # fmt: skip
    return subprocess.run(cmd, cwd=recipe, env=env, capture_output=True, text=True)


def _part(state, prefix):
    return {k: v for k, v in state.items() if k.startswith(prefix + ".")}


@pytest.mark.slow
def test_branch_runs_then_the_fused_model_on_their_frozen_backbones(recipe):
    """Stages 7-10 with --branch_configs / --branch_init, one epoch each."""
    # The mini recipe's stage 1 writes the tiny RoBERTa the text configs name.
    assert (recipe / "exp" / "text" / "roberta_tiny" / "config.json").is_file()
    out = _merit(recipe, 7, 10, *BRANCHES)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    exp = recipe / "exp" / "merit_train_speech_text_fusion_tiny"
    # Stages 9-10: the fused model decodes the test set with its transcripts and
    # is scored.
    results = (exp / "RESULTS.md").read_text()
    assert "| test | 6 |" in results and "F1-macro" in results, results
    assert (exp / "decode" / "test" / "score" / "summary.json").is_file()
    speech = exp.with_name(exp.name + "_speech")
    text = exp.with_name(exp.name + "_text")
    assert "Stage 7: no --step1_config: skipped" not in log
    assert f"Stage 7: branch run speech (two-run protocol): {SPEECH}" in log
    assert f"Stage 7: branch run text (two-run protocol): {TEXT}" in log
    # Stage 8 passes an --init_param per part, from each branch's best checkpoint
    # (merit_train keeps them all; ESPnet's parser alone keeps the last).
    command = (exp / "train.log").read_text().splitlines()[0]
    for branch, part in (("speech", "frontend"), ("text", "text_frontend")):
        init = f"--init_param exp/{exp.name}_{branch}/{BEST}:{part}:{part}"
        assert init in command, command
    s_state = torch.load(speech / BEST, map_location="cpu")
    t_state = torch.load(text / BEST, map_location="cpu")
    f_state = torch.load(exp / BEST, map_location="cpu")
    for prefix, branch in (("frontend", s_state), ("text_frontend", t_state)):
        mine, theirs = _part(f_state, prefix), _part(branch, prefix)
        assert mine and set(mine) == set(theirs), prefix
        for k in mine:  # frozen: the branch run's weights, unchanged by training
            assert torch.equal(mine[k], theirs[k]), k
    # A re-run skips all three runs; a retrained branch retrains the fused model.
    again = _merit(recipe, 7, 8, *BRANCHES)
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-3000:]
    assert log.count("skip:") == 3 and "Epoch" not in log, log[-3000:]
    (speech / ".done").write_text("changed\n")
    again = _merit(recipe, 8, 8, *BRANCHES)
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-3000:]
    assert "training again" in log, log[-3000:]
    # Finished runs as branches (name=exp_dir, e.g. another tag's): stage 7 leaves
    # them as they are, stage 8 takes their parts.
    dirs = f"speech=exp/{speech.name} text=exp/{text.name}/"
    reuse = ["--branch_configs", dirs, *BRANCHES[2:], "--tag", "reused"]
    again = _merit(recipe, 7, 8, *reuse)
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-3000:]
    assert f"the finished run exp/{speech.name}, not trained here" in log
    assert log.count("train_step) training ") == 1, log[-3000:]  # the fused one
    command = (recipe / "exp" / "merit_reused" / "train.log").read_text()
    assert f"--init_param exp/{text.name}/{BEST}:text_frontend:" in command
    fused = torch.load(recipe / "exp" / "merit_reused" / BEST, map_location="cpu")
    for k, v in _part(t_state, "text_frontend").items():
        assert torch.equal(fused[k], v), k


@pytest.mark.parametrize(
    "options, message",
    [
        (["--branch_configs", "speech"],
         "--branch_configs: 'speech' is not name=config"),
        (["--branch_configs", f"step1={SPEECH}", "--branch_init", "step1=frontend"],
         "bad branch name 'step1'"),
        (["--branch_configs", f"a={SPEECH} a={TEXT}"],
         "--branch_configs: two branches named a"),
        (["--branch_configs", "speech=conf/none.yaml"],
         "--branch_configs speech=conf/none.yaml: no such file conf/none.yaml"),
        (["--branch_configs", "speech=conf"],
         "--branch_configs speech=conf: conf is not an experiment dir (no "
         "config.yaml)"),
        ([*BRANCHES[:2], "--branch_init", "speech=frontend txt=text_frontend"],
         "--branch_init txt=text_frontend: no branch named 'txt' in "
         "--branch_configs (branches: speech text)"),
        (["--branch_init", "speech=frontend"],
         "no branch named 'speech' in --branch_configs (branches: none)"),
        ([*BRANCHES[:2], "--branch_init", "speech"],
         "--branch_init: 'speech' is not name=part,part"),
        ([*BRANCHES[:2], "--branch_init", "speech=frontend text=front-end"],
         "--branch_init text=front-end: bad part 'front-end'"),
        ([*BRANCHES[:2], "--branch_init", "speech=frontend text=frontend"],
         "--branch_init: part frontend taken from two branches"),
        ([*BRANCHES[:2], "--branch_init", "speech=frontend"],
         "--branch_configs: branch text has no --branch_init entry"),
    ],
)  # fmt: skip
def test_branch_option_errors(tmp_path, options, message):
    # Checked before stage 7 or 8 does anything: nothing is trained (no data).
    recipe = copy_recipe(MINI_RECIPE, tmp_path / "r")
    for first, last in ((7, 7), (8, 8)):
        out = _merit(recipe, first, last, *options)
        assert out.returncode == 2, (out.stdout + out.stderr)[-3000:]
        assert message in out.stdout + out.stderr, (out.stdout + out.stderr)[-3000:]
    assert not (recipe / "exp").exists()


def test_fused_step_needs_finished_branch_runs(tmp_path):
    recipe = copy_recipe(MINI_RECIPE, tmp_path / "r")
    out = _merit(recipe, 8, 8, *BRANCHES)
    assert out.returncode == 1
    assert "error: branch run speech is not finished" in out.stdout + out.stderr
    assert "run stage 7" in out.stdout + out.stderr
    # A run given by its dir that has not finished (no .done).
    run = recipe / "exp" / "merit_speech_only"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text((recipe / SPEECH).read_text())
    options = ["--branch_configs", f"speech=exp/{run.name}", "--branch_init",
               "speech=frontend"]  # fmt: skip
    out = _merit(recipe, 7, 8, *options)
    assert out.returncode == 1
    log = out.stdout + out.stderr
    assert "the finished run exp/merit_speech_only, not trained here" in log
    assert "branch run speech is not finished (exp/merit_speech_only/.done" in log
    assert "train it first (a finished run was given)" in log
