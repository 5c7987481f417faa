"""Cross-validation folds averaged (``espnet2_merit.scoring.folds``,
``merit_folds``, and the IEMOCAP recipe's call after its folds): per set a row
per fold and the mean ± sample std; missing or different sets are errors naming
the fold and the file."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from merit_testing import REPO, copy_recipe

from espnet2_merit.bin import merit_folds
from espnet2_merit.errors import MeritInputError
from espnet2_merit.scoring.folds import load_folds, write_fold_results

SETS = ["test_seen_snr0", "test_seen_snr5"]
# fold -> (UA, WA, F1, STOI) of each set: made-up numbers
SCORES = {
    "fold1": [(0.60, 0.62, 0.58, 0.80), (0.70, 0.71, 0.69, 0.85)],
    "fold2": [(0.50, 0.55, 0.49, 0.78), (0.66, 0.64, 0.65, 0.86)],
    "fold3": [(0.55, 0.52, 0.51, 0.79), (0.68, 0.69, 0.66, 0.84)],
}


def _summary(name, ua, wa, f1, stoi):
    return {
        "set": name,
        "num_utts": 10,
        "tasks": {
            "se": {"name": "speech_ref1", "kind": "waveform",
                   "scores": {"stoi": stoi}, "noisy_scores": {"stoi": 0.7}},
            "ser": {"name": "emotion", "kind": "label",
                    "scores": {"recall_macro": ua, "accuracy": wa, "f1_macro": f1}},
        },
    }  # fmt: skip


def _folds(root, scores=SCORES, sets=SETS):
    out = {}
    for fold, rows in scores.items():
        exp = root / fold / "merit_x"
        for name, row in zip(sets, rows):
            score = exp / "decode" / name / "score"
            score.mkdir(parents=True)
            (score / "summary.json").write_text(json.dumps(_summary(name, *row)))
        out[fold] = exp
    return out


def _rows(text, heading):
    lines = text[text.index(heading) :].split("\n\n")[1].splitlines()
    table = [line for line in lines if line.startswith("|")]
    head = [c.strip() for c in table[0].strip("|").split("|")]
    return [
        dict(zip(head, (c.strip() for c in r.strip("|").split("|")))) for r in table[2:]
    ]


def test_per_fold_rows_and_mean_with_sample_std(tmp_path):
    folds = _folds(tmp_path)
    out = tmp_path / "RESULTS_folds.md"
    merit_folds.main(
        ["--folds", *(f"{k}={v}" for k, v in folds.items()), "--out", str(out)]
    )
    text = out.read_text()
    assert "sample one (ddof=1" in text
    rows = _rows(text, "### test, seen noise, 5 dB")
    assert [r["fold"] for r in rows] == ["fold1", "fold2", "fold3", "mean ± std"]
    assert list(rows[0]) == ["fold", "utts", "UA", "WA", "F1-macro", "STOI enh"]
    ua = [SCORES[f][1][0] for f in SCORES]
    assert rows[1]["UA"] == "0.6600"
    assert rows[3]["UA"] == f"{np.mean(ua):.4f} ± {np.std(ua, ddof=1):.4f}"
    assert rows[3]["utts"] == "30"
    summary = _rows(text, "### Mean ± std over the folds")
    assert [r["set"] for r in summary] == [
        "test, seen noise, 0 dB",
        "test, seen noise, 5 dB",
    ]
    assert summary[1]["UA"] == rows[3]["UA"]
    numbers = json.loads(out.with_suffix(".json").read_text())
    wa = numbers["sets"]["test_seen_snr0"]["WA"]
    assert wa["folds"] == {f: SCORES[f][0][1] for f in SCORES} and wa["n"] == 3
    assert wa["std"] == pytest.approx(np.std([0.62, 0.55, 0.52], ddof=1))


def test_missing_or_different_sets_name_the_fold_and_file(tmp_path):
    folds = _folds(tmp_path / "a")
    (folds["fold2"] / "decode" / SETS[1] / "score" / "summary.json").unlink()
    with pytest.raises(
        MeritInputError,
        match=r"fold 'fold2': .*fold2/merit_x/decode/test_seen_snr5/score/summary"
        r".json missing",
    ):
        load_folds(folds)
    folds = _folds(tmp_path / "b")
    extra = folds["fold3"] / "decode" / "test_seen_snr10" / "score"
    extra.mkdir(parents=True)
    (extra / "summary.json").write_text(json.dumps(_summary("x", 0, 0, 0, 0)))
    with pytest.raises(MeritInputError, match=r"fold 'fold3' has scored sets that "):
        load_folds(folds)
    with pytest.raises(MeritInputError, match=r"fold 'f9': no such directory .*n"):
        load_folds({"f9": tmp_path / "nowhere"})
    (tmp_path / "empty" / "decode").mkdir(parents=True)
    with pytest.raises(MeritInputError, match=r"fold 'f0': no scored set under"):
        write_fold_results({"f0": tmp_path / "empty"}, tmp_path / "o.md")


def test_iemocap_run_averages_the_folds_it_ran(tmp_path):
    """run.sh, after its folds, with stages that reach scoring: the folds' decode
    dirs of the experiment merit.sh names (tag from --train_config) averaged into
    exp/RESULTS_folds_<tag>.md."""
    recipe = copy_recipe(REPO / "egs2" / "iemocap" / "merit1", tmp_path / "r")
    _folds(recipe / "exp", {f"fold{k}": SCORES[f"fold{k}"] for k in (1, 3)})
    for k in (1, 3):
        (recipe / "exp" / f"fold{k}" / "merit_x").rename(
            recipe / "exp" / f"fold{k}" / "merit_tiny"
        )
    (recipe / "conf" / "tiny.yaml").write_text("best_model_criterion: []\n")
    out = subprocess.run(
        ["./run.sh", "--folds", "1 3", "--stage", "11", "--stop_stage", "11",
         "--train_config", "conf/tiny.yaml"],
        cwd=recipe, env=dict(os.environ, MERIT_PYTHON=sys.executable),
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    text = (recipe / "exp" / "RESULTS_folds_tiny.md").read_text()
    rows = _rows(text, "### test, seen noise, 0 dB")
    assert [r["fold"] for r in rows] == ["fold1", "fold3", "mean ± std"]
