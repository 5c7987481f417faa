"""The ICBHI 2017 recipe, stages 1-13, in a scratch copy of the recipe directory
on its smallest miniature (local/make_mini_icbhi.py, 6 patients) and generated
noise, with the tiny fbank configs and one epoch: the ICBHI scores reach
RESULTS.md, and the enhance-then-classify cascade (an SE-only model's output
classified by the sparse MERIT model, --enh_exp) is decoded, scored and compared
(stage 11)."""

import os
import re
import subprocess
import sys

import pytest
from merit_testing import REPO, copy_recipe, load_local, noise_env

RECIPE = REPO / "egs2" / "icbhi2017" / "merit1"
mini = load_local("make_mini_icbhi", "egs2/icbhi2017/merit1/local")
HEADERS = ("ICBHI Se", "ICBHI Sp", "ICBHI score")


def _table_values(markdown: str, section: str, headers):
    """{header: [values of its column]} of the first table after ``section``."""
    lines = markdown[markdown.index(section) :].splitlines()[2:]  # heading, blank
    rows = lines[: next((i for i, x in enumerate(lines) if not x), len(lines))]
    head = [c.strip() for c in rows[0].strip("|").split("|")]
    body = [[c.strip() for c in r.strip("|").split("|")] for r in rows[2:]]
    return {h: [row[head.index(h)] for row in body] for h in headers}


def _run(recipe, env, *args):
    out = subprocess.run(
        ["./run.sh", "--nj", "2", "--inference_nj", "1", "--ngpu", "0",
         "--gpu_inference", "false", "--test_snrs", "0", *args],
        cwd=recipe, env=env, capture_output=True, text=True,
    )  # fmt: skip
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    return log


@pytest.mark.slow
def test_icbhi_recipe_end_to_end(tmp_path):
    corpus = tmp_path / "ICBHI"
    mini.generate(corpus, patients=6, seed=0)
    recipe = copy_recipe(RECIPE, tmp_path / "r")
    env = dict(
        os.environ,
        MERIT_PYTHON=sys.executable,
        XDG_CACHE_HOME=str(tmp_path),
        ICBHI=str(corpus),
        **noise_env(tmp_path / "noise"),
    )
    env.pop("ICBHI_SPLIT_FILE", None)
    sparse = "conf/tuning/train_fbank_sparse_merit_tiny.yaml"
    log = _run(recipe, env, "--train_config", sparse, "--stop_stage", "13")
    for stage in range(1, 14):
        assert f"Stage {stage}:" in log
    assert "Stage 7: no --step1_config: skipped" in log  # fbank: no SSL to freeze
    exp = recipe / "exp" / "merit_train_fbank_sparse_merit_tiny"
    results = (exp / "RESULTS.md").read_text()
    assert "Rocha et al." in results  # the metric's definition under "Metrics"
    for section in ("### test, seen noise", "### test, unseen noise", "### Other sets"):
        values = _table_values(results, section, HEADERS + ("F1-macro",))
        for header in HEADERS:
            assert values[header] and all(0 <= float(v) <= 1 for v in values[header])
    assert (exp / "packed" / "model.zip").is_file()

    # Enhance-then-classify: the SER-only classifier on the sparse model's
    # enhanced cycles (--enh_exp; the recipe's protocol puts an SE-only model
    # there, the same path), scored with a selection of label metrics only, and
    # stage 11 comparing it with the sparse model, the ICBHI score a column.
    ser_only = "conf/tuning/train_fbank_ser_only_tiny.yaml"
    log = _run(
        recipe, env, "--train_config", ser_only, "--stage", "8", "--stop_stage", "11",
        "--enh_exp", str(exp.relative_to(recipe)),
        "--score_metrics", "f1_macro icbhi_se icbhi_sp icbhi_score",
        "--compare_systems", f"sparse={exp.relative_to(recipe)}",
        "--compare_reference", "sparse",
    )  # fmt: skip
    decode = "decode_enh_" + exp.name  # the cascade's decode dir
    cascade = recipe / "exp" / "merit_train_fbank_ser_only_tiny" / decode
    results = (cascade / "RESULTS.md").read_text()
    values = _table_values(results, "### test, seen noise", HEADERS + ("F1-macro",))
    assert all(0 <= float(v) <= 1 for v in values["ICBHI score"])
    # The selection's columns only (the SE model's waveforms are not scored).
    assert "| SNR (dB) | utts | F1-macro | ICBHI Se | ICBHI Sp | ICBHI score |\n" in (
        results
    )
    compare = (recipe / "exp" / "compare" / "RESULTS.md").read_text()
    assert re.search(r"\| system \|.*\| ICBHI score \|", compare), compare[:3000]
    assert "train_fbank_ser_only_tiny" in compare and "sparse (ref)" in compare


@pytest.mark.parametrize(
    "config", sorted(RECIPE.glob("conf/**/*fbank_*.yaml")), ids=lambda p: p.name
)
def test_fbank_configs_train_a_step(config, data_dirs):
    """Each fbank config (paper-size and tiny) builds on the one-layer fbank
    stack and takes a training step: MoE fusions and heads work with L = 1."""
    import torch
    import yaml
    from merit_testing import data_args

    from espnet2_merit.tasks.merit import MeritTask

    train, valid = data_dirs
    args = MeritTask.get_parser().parse_args(
        ["--config", str(config), "--emotion_list", str(train / "emotion_list"),
         *data_args(train, valid)]
    )  # fmt: skip
    model = MeritTask.build_model(args)
    assert model.frontend.num_layers() == 1
    tasks = list(yaml.safe_load(config.read_text())["tasks"])
    assert list(model.heads) == tasks
    wav, lengths = torch.randn(2, 8000), torch.tensor([8000, 6000])
    loss, stats, _ = model(
        wav, lengths, speech_ref1=wav, speech_ref1_lengths=lengths,
        emotion=torch.tensor([[0], [2]]),
    )  # fmt: skip
    loss.backward()
    assert torch.isfinite(loss) and all(f"{t}_loss" in stats for t in tasks)
