"""Cross-corpus scoring (``espnet2_merit.scoring.cross_corpus``): the label map
reader and its errors, the mapping of posteriors and references, and merit.sh
stages 9-10 decoding and scoring another corpus's test set through the maps."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from merit_testing import REPO, copy_recipe

from espnet2_merit.errors import MeritInputError
from espnet2_merit.scoring import registry
from espnet2_merit.scoring.cross_corpus import CrossMap, read_label_map
from espnet2_merit.scoring.ser import classification_metrics
from espnet2_merit.utils.datadir import read_kaldi

MODEL = ["A", "S", "H", "N"]


def _map(path, text):
    path.write_text(text, encoding="utf-8")
    return read_label_map(path)


def test_reader_names_the_file_and_line(tmp_path):
    m = _map(tmp_path / "m", "# comment\nA angry  # trailing\n\nS\tsad\n")
    assert m.mapping == {"A": "angry", "S": "sad"} and m.lines == {"A": 2, "S": 4}
    with pytest.raises(MeritInputError, match=r"/bad:2: expected '<class> <shared"):
        _map(tmp_path / "bad", "A angry\nS sad x\n")
    with pytest.raises(MeritInputError, match=r"/dup:3: class 'A' given twice \(fi"):
        _map(tmp_path / "dup", "A angry\nS sad\nA happy\n")
    with pytest.raises(MeritInputError, match=r"/empty: no class mapped"):
        _map(tmp_path / "empty", "# nothing\n")
    with pytest.raises(MeritInputError, match=r"/none: no such label map file"):
        read_label_map(tmp_path / "none")


def test_map_errors(tmp_path):
    test = _map(tmp_path / "test", "ANG angry\nSAD sad\nNEU neutral\n")
    model = _map(tmp_path / "model", "A angry\nS sad\nX happy\n")
    with pytest.raises(MeritInputError, match=r"/model:3: class 'X' is not one of"):
        CrossMap(test, MODEL, model)
    # No model map: the model's classes A S H N share nothing with angry ...
    with pytest.raises(MeritInputError, match=r"/test: .* share no class with the m"):
        CrossMap(test, MODEL)
    model = _map(tmp_path / "model", "A angry\nS sad\n")
    with pytest.raises(MeritInputError, match=r"/test:3: class 'NEU' maps to 'neut"):
        CrossMap(test, MODEL, model)  # neutral: not a class the model maps to


def test_posteriors_summed_and_unmapped_classes_never_predicted(tmp_path):
    test = _map(tmp_path / "test", "ANG high\nHAP high\nSAD low\nNEU low\n")
    model = _map(tmp_path / "model", "A high\nH high\nS low\n")  # N not mapped
    cross = CrossMap(test, MODEL, model, "x")
    assert cross.shared == ["high", "low"]
    probs = np.array(
        [
            [0.3, 0.4, 0.3, 0.0],  # A + H 0.6 > S 0.4 although S is the argmax
            [0.1, 0.2, 0.1, 0.6],  # N (unmapped) largest; A + H = S: a tie
            [0.0, 0.3, 0.1, 0.6],  # N largest, unmapped: low (S 0.3 > 0.1)
        ]
    )
    assert cross.predict(probs) == ["high", "high", "low"]  # a tie: the first
    refs, left_out = cross.map_references(["ANG", "FEA", "NEU", "FEA", "DIS"])
    assert refs == ["high", None, "low", None, None]
    assert left_out == {"DIS": 1, "FEA": 2}
    with pytest.raises(MeritInputError, match=r"expected \(N, 4\)"):
        cross.predict(probs[:, :3])


# Another corpus's labels (CREMA-D-like codes) for the 6 generated utterances.
CROSS_LABELS = ["ANG", "SAD", "HAP", "FEA", "DIS", "NEU"]


def test_recipe_decodes_and_scores_another_corpus(trained_exp, data_dirs, tmp_path):
    """merit.sh stages 9-10 with --cross_test_sets: the set is decoded as
    cross_<corpus>_<dir>, its labels scored over the shared classes of the maps
    (equal to the same mapping done by hand from the posteriors), unmapped
    utterances left out and counted, and RESULTS.md gives it a group of its own."""
    _, valid = data_dirs
    egs2 = tmp_path / "egs2"
    recipe = copy_recipe(REPO / "egs2" / "msp_podcast" / "merit1", egs2 / "m" / "r")
    exp = recipe / "exp" / "merit_tiny"
    exp.mkdir(parents=True)
    shutil.copy(trained_exp[0], exp / "config.yaml")
    shutil.copy(trained_exp[0], recipe / "tiny.yaml")
    (exp / "model.pth").symlink_to(trained_exp[1])
    shutil.copytree(valid, recipe / "dump" / "raw" / "test")
    cross = egs2 / "crema_d" / "merit1" / "dump" / "raw" / "test_seen_snr5"
    shutil.copytree(valid, cross)
    utts = sorted(read_kaldi(cross / "wav.scp"))
    (cross / "emotion").write_text(
        "".join(f"{u} {c}\n" for u, c in zip(utts, CROSS_LABELS))
    )
    (recipe / "test.map").write_text("ANG high\nHAP high\nSAD low\nNEU low\n")
    (recipe / "model.map").write_text("A high\nH high\nS low\nN low\n")
    out = subprocess.run(
        ["./merit.sh", "--stage", "9", "--stop_stage", "10", "--train_config",
         "tiny.yaml", "--inference_model", "model.pth", "--simulate_noise", "false",
         "--test_sets", "test", "--nj", "1", "--inference_nj", "1",
         "--cross_test_sets", "../../crema_d/merit1/dump/raw/test_seen_snr5",
         "--cross_label_map", "test.map", "--cross_model_map", "model.map"],
        cwd=recipe, env=dict(os.environ, MERIT_PYTHON=sys.executable),
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    decoded = exp / "decode" / "cross_crema_d_test_seen_snr5"
    summary = json.loads((decoded / "score" / "summary.json").read_text())
    ser = summary["tasks"]["ser"]
    # By hand: high = A + H, low = S + N, over the mapped references.
    post = read_kaldi(decoded / "emotion_posteriors")
    hand_refs, hand_hyps = [], []
    for u, label in zip(utts, CROSS_LABELS):
        if label in ("FEA", "DIS"):
            continue
        pa, ps, ph, pn = map(float, post[u].split())
        hand_hyps.append("high" if pa + ph >= ps + pn else "low")
        hand_refs.append("high" if label in ("ANG", "HAP") else "low")
    want = classification_metrics(hand_refs, hand_hyps, ["high", "low"])
    for m in registry.METRICS:
        if m.name in ser["scores"]:
            assert ser["scores"][m.name] == pytest.approx(want[m.name]), m.name
    assert ser["details"]["classes"] == ["high", "low"]
    assert ser["left_out"] == {"DIS": 1, "FEA": 1} and ser["num_scored"] == 4
    assert summary["cross_corpus"]["corpus"] == "crema_d"
    assert summary["tasks"]["se"]["scores"]  # the other tasks: every utterance
    rows = (decoded / "score" / "per_utt.tsv").read_text().splitlines()
    head = rows[0].split("\t")
    ref_col = [r.split("\t")[head.index("ser_ref")] for r in rows[1:]]
    assert ref_col == ["high", "low", "high", "-", "-", "low"]
    results = (exp / "RESULTS.md").read_text()
    section = results[results.index("### Cross-corpus (crema_d): test, seen noise") :]
    assert "high, low: test labels by `test.map`, model classes by `model.map`" in (
        section
    )
    assert "Left out (class not mapped): 5 dB: DIS 1, FEA 1 (ser)." in section
    assert "(emotion): F1-macro" in results and "classes A, S, H, N." in results
    assert "### Other sets" in results  # the model's own set "test" only
    own = results[results.index("### Other sets") :].split("### Cross")[0]
    assert "cross_" not in own


def test_comparison_leaves_out_the_unmapped_utterances(tmp_path):
    """Stage 11's paired test on a cross-corpus set: utterances whose reference is
    ``-`` (class not mapped) are not part of it."""
    from espnet2_merit.scoring.compare import SetData, paired_test

    summary = {"tasks": {"ser": {"kind": "label", "details": {"classes": ["h", "l"]}}}}
    refs = ["h", "-", "l", "h", "-", "l"]
    systems = []
    for name, hyps in (("a", "hhlhll"), ("b", "hllhhh")):
        d = SetData(name, "cross_x_test", tmp_path, summary)
        d._rows = {
            f"u{i}": {"ser_ref": r, "ser_hyp": h}
            for i, (r, h) in enumerate(zip(refs, hyps))
        }
        systems.append(d)
    f1 = next(m for m in registry.METRICS if m.name == "f1_macro")
    test = paired_test("ser", f1, *systems, rounds=100, seed=0)
    assert test.num_utts == 4
