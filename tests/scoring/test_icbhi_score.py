"""The ICBHI 2017 challenge scores (sensitivity, specificity, their mean): the
function on a hand-computed set, its registry rows (off by default), its
selection through ``merit_score --metrics`` and its paired test."""

import json
from pathlib import Path

import pytest

from espnet2_merit.bin import merit_score
from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import LabelTarget
from espnet2_merit.scoring import registry, set_scoring
from espnet2_merit.scoring.results import write_results
from espnet2_merit.scoring.ser import classification_metrics, icbhi_scores
from espnet2_merit.scoring.significance import (
    COUNT_STATISTICS,
    paired_randomization_test,
)

CLASSES = ["N", "C", "W", "B"]
# 10 cycles. Normal: 3 of 4 right (one taken for a crackle): Sp = 3/4. Abnormal:
# C right, C as W, W and W right, B as W (the wrong class, though "abnormal"
# is right), B right: Se = 4/6. Score (3/4 + 4/6) / 2 = 17/24.
REF = ["N", "N", "N", "N", "C", "C", "W", "W", "B", "B"]
HYP = ["N", "N", "C", "N", "C", "W", "W", "W", "W", "B"]
WANT = {"icbhi_se": 4 / 6, "icbhi_sp": 3 / 4, "icbhi_score": 17 / 24}
ICBHI = ["icbhi_se", "icbhi_sp", "icbhi_score"]


def test_hand_computed_set():
    confusion = classification_metrics(REF, HYP, CLASSES)["confusion_matrix"]
    assert icbhi_scores(confusion, CLASSES) == pytest.approx(WANT)
    for m in registry.metrics_of("label", ICBHI):
        assert m.fn(REF, HYP, CLASSES) == pytest.approx(WANT[m.name]), m.name
    # The normal class is found by name, wherever the class list puts it.
    order = ["C", "W", "B", "N"]
    confusion = classification_metrics(REF, HYP, order)["confusion_matrix"]
    assert icbhi_scores(confusion, order) == pytest.approx(WANT)


def test_wheeze_for_a_both_cycle_is_wrong():
    """An abnormal cycle counts only with its exact class: W for B lowers Se
    as much as N for B would, and right B raises it."""
    base = registry.metrics_of("label", ["icbhi_se"])[0].fn
    right = HYP[:8] + ["B", "B"]
    as_normal = HYP[:8] + ["N", "B"]
    assert base(REF, HYP, CLASSES) == pytest.approx(4 / 6)
    assert base(REF, as_normal, CLASSES) == pytest.approx(4 / 6)
    assert base(REF, right, CLASSES) == pytest.approx(5 / 6)


def test_sets_without_a_kind_of_cycle_and_without_n(caplog):
    scores = icbhi_scores([[2, 0], [0, 0]], ["N", "C"])
    assert scores == {"icbhi_se": 0.0, "icbhi_sp": 1.0, "icbhi_score": 0.5}
    assert "no abnormal cycle" in caplog.text
    with pytest.raises(MeritInputError, match=r"no normal class 'N'"):
        icbhi_scores([[1, 0], [0, 1]], ["C", "W"])
    with pytest.raises(MeritInputError, match=r"\(3, 3\) confusion matrix"):
        icbhi_scores([[1, 0, 0]] * 3, CLASSES)


def test_off_by_default_and_selected_by_name():
    rows = {m.name: m for m in registry.METRICS}
    assert [n for n in ICBHI if rows[n].default] == []
    assert all(m.default for n, m in rows.items() if n not in ICBHI)
    assert not set(ICBHI) & set(registry.selected(None))
    assert not set(ICBHI) & {m.name for m in registry.metrics_of("label")}
    assert registry.selected(["default", "icbhi_score"]) == [
        n for n in registry.all_names() if n != "icbhi_se" and n != "icbhi_sp"
    ]
    assert registry.selected(["icbhi_sp", "f1_macro"]) == ["f1_macro", "icbhi_sp"]
    # Tables list every row (columns without values are dropped there).
    assert set(ICBHI) <= {m.name for m in registry.metrics_of("label", every=True)}
    with pytest.raises(MeritInputError, match=r"\['icbhi'\] are not metrics"):
        registry.selected(["default", "icbhi"])


def _decoded_set(root: Path, ref, hyp, classes) -> tuple:
    """(reference dir, decode dir) of a classification-only set: a label file
    each and the decode manifest (no audio: label tasks read none)."""
    target = LabelTarget("emotion", classes, "--emotion_list")
    ref_dir, hyp_dir = root / "ref", root / "exp" / "decode" / "test_seen_snr0"
    for d, labels in ((ref_dir, ref), (hyp_dir, hyp)):
        d.mkdir(parents=True)
        utts = [f"u{i:02d}" for i in range(len(labels))]
        (d / "emotion").write_text("".join(f"{u} {x}\n" for u, x in zip(utts, labels)))
    (ref_dir / "wav.scp").write_text("".join(f"{u} {u}.wav\n" for u in utts))
    manifest = {"tasks": {"ser": target.describe()}, "files": ["emotion"]}
    (hyp_dir / "outputs.json").write_text(json.dumps(manifest))
    return ref_dir, hyp_dir


def _score(ref_dir, hyp_dir, *extra):
    out = hyp_dir / "score"
    merit_score.main(["--ref_dir", str(ref_dir), "--hyp_dir", str(hyp_dir),
                      "--out_dir", str(out), *extra])  # fmt: skip
    return json.loads((out / "summary.json").read_text())["tasks"]["ser"]["scores"]


def test_merit_score_selection_results_and_rescoring(tmp_path):
    """Speech-style scoring has no ICBHI keys; --metrics default + the ICBHI
    ones adds them (and rescoring: the selection is a score option), and
    RESULTS.md shows their columns and their definition."""
    ref_dir, hyp_dir = _decoded_set(tmp_path, REF, HYP, CLASSES)
    scores = _score(ref_dir, hyp_dir)
    assert not set(ICBHI) & set(scores) and "f1_macro" in scores
    selection = ["default", *ICBHI]
    assert not set_scoring.up_to_date(hyp_dir / "score", selection)
    scores = _score(ref_dir, hyp_dir, "--metrics", *selection)
    assert {k: scores[k] for k in ICBHI} == pytest.approx(WANT)
    assert "f1_macro" in scores and "accuracy" in scores
    assert set_scoring.up_to_date(hyp_dir / "score", selection)
    assert not set_scoring.up_to_date(hyp_dir / "score", None)
    tables = write_results(tmp_path / "exp")
    assert "| ICBHI Se | ICBHI Sp | ICBHI score |" in tables
    assert "| 0.6667 | 0.7500 | 0.7083 |" in tables
    text = (tmp_path / "exp" / "RESULTS.md").read_text()
    assert "Rocha et al." in text and "(Se + Sp) / 2" in text
    # Only the ICBHI score: the other label metrics are not computed.
    scores = _score(ref_dir, hyp_dir, "--metrics", "icbhi_score")
    assert list(scores) == ["icbhi_score"]


def test_a_class_list_without_n_names_the_files(tmp_path):
    ref = ["C", "W", "B", "C"]
    ref_dir, hyp_dir = _decoded_set(tmp_path, ref, ref, ["C", "W", "B"])
    assert "f1_macro" in _score(ref_dir, hyp_dir)  # by default: no ICBHI, no error
    with pytest.raises(SystemExit) as e:  # merit_score: the error in one line
        _score(ref_dir, hyp_dir, "--metrics", "default", "icbhi_se")
    text = str(e.value)
    assert str(ref_dir / "emotion") in text and "outputs.json" in text
    assert "icbhi_se" in text and "no normal class 'N'" in text


def test_paired_test_recomputes_the_icbhi_statistics():
    """The randomization test's statistics are the metric's; W for B in system A
    and B for B in system B differ by 1/12 in the score."""
    assert set(ICBHI) <= set(COUNT_STATISTICS)
    other = HYP[:8] + ["B", "B"]
    test = paired_randomization_test(REF, HYP, other, CLASSES, "icbhi_score")
    assert test.difference == pytest.approx(17 / 24 - (3 / 4 + 5 / 6) / 2)
    assert test.p_value == 1.0  # one disagreement: both shuffles as extreme
    with pytest.raises(MeritInputError, match="no normal class"):
        paired_randomization_test(["C"], ["C"], ["W"], ["C", "W"], "icbhi_sp")
