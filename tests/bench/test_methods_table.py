"""bench/methods_table.py: mean ± std over seeds, relative changes over the
references and significance with the seeds' (seed, utterance) pairs pooled."""

import json
import zlib

import numpy as np
import pytest
from merit_testing import load_local

from espnet2_merit.metrics.significance import (
    paired_randomization_test,
    paired_wilcoxon,
)

table = load_local("methods_table", "bench")
SEEDS = (1, 2)
SETS = ("test1_seen_snr-5", "test1_unseen_snr5")
CLASSES = ["A", "S", "H", "N"]
UTTS = [f"u{i}" for i in range(12)]
REFS = [CLASSES[i % 4] for i in range(12)]


def _run(decode, system, seed, set_name):
    """A scored set with random predictions and SE scores (none for SER only)."""
    rng = np.random.default_rng(zlib.crc32(f"{system} {seed} {set_name}".encode()))
    hyp = [r if rng.random() < 0.6 else CLASSES[rng.integers(4)] for r in REFS]
    se = system != "SER only (noisy input)"
    header = ["utt", "ref", "hyp"] + (["ssnr", "pesq", "stoi", "sisdr"] if se else [])
    rows, cols = [], {m: rng.normal(5, 2, len(UTTS)) for m in header[3:]}
    for i, utt in enumerate(UTTS):
        rows.append([utt, REFS[i], hyp[i]] + [f"{cols[m][i]:.4f}" for m in header[3:]])
    score = decode / set_name / "score"
    score.mkdir(parents=True)
    text = "\n".join("\t".join(r) for r in [header] + rows) + "\n"
    (score / "per_utt.tsv").write_text(text)
    summary = {"ser": {"f1_macro": rng.uniform(0.2, 0.8), "classes": CLASSES}}
    if se:
        means = {m: float(np.mean(np.round(cols[m], 4))) for m in header[3:]}
        summary["se"] = {"enhanced": means}
    (score / "summary.json").write_text(json.dumps(summary))


@pytest.fixture(scope="module")
def expdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_methods")
    for name, (exp, decode) in table.SYSTEMS.items():
        for seed in SEEDS:
            d = root / f"merit_{exp}_seed{seed}" / decode.format(seed=seed)
            for set_name in SETS:
                _run(d, name, seed, set_name)
    return root


def _column(runs, set_name, key):
    return [r.rows(set_name)[u][key] for r in runs for u in sorted(UTTS)]


def test_means_relative_changes_and_pooled_tests(expdir, tmp_path):
    out = tmp_path / "methods.md"
    table.main(["--expdir", str(expdir), "--seeds", *map(str, SEEDS),
                "--out", str(out), "--plot", str(tmp_path / "f1.png")])  # fmt: skip
    results = json.loads(out.with_suffix(".json").read_text())
    runs = table.load_runs(expdir, SEEDS)
    sparse, mtl = runs["sparse MERIT"], runs["naive MTL"]
    f1 = [r.value(SETS[0], "f1_macro") for r in sparse]
    cell = results["f1_macro"]["test1, seen"]["sparse MERIT"]["-5"]
    assert cell["mean"] == pytest.approx(np.mean(f1))
    assert cell["std"] == pytest.approx(np.std(f1, ddof=1))
    ref_mean = np.mean([r.value(SETS[0], "f1_macro") for r in mtl])
    vs = cell["vs"]["naive MTL"]
    assert vs["relative_percent"] == pytest.approx(
        (np.mean(f1) - ref_mean) / ref_mean * 100
    )
    # Pooled over seeds: 2 x 12 pairs, the same p-value as a direct test.
    direct = paired_randomization_test(
        _column(sparse, SETS[0], "ref"), _column(sparse, SETS[0], "hyp"),
        _column(mtl, SETS[0], "hyp"), CLASSES,
    )  # fmt: skip
    assert vs["pairs"] == 24 and vs["p_value"] == pytest.approx(direct.p_value)
    ssnr = results["ssnr"]["test1, unseen"]["sparse MERIT"]["5"]["vs"]["naive MTL"]
    wil = paired_wilcoxon(
        [float(x) for x in _column(sparse, SETS[1], "ssnr")],
        [float(x) for x in _column(mtl, SETS[1], "ssnr")],
    )
    assert ssnr["p_value"] == pytest.approx(wil.p_value)
    # The SER-only system has no SE scores; references get no comparison to
    # themselves; the markdown has a table per metric and noise set.
    assert results["ssnr"]["test1, seen"]["SER only (noisy input)"] == {}
    assert (
        "naive MTL" not in results["f1_macro"]["test1, seen"]["naive MTL"]["-5"]["vs"]
    )
    text = out.read_text()
    assert text.count("### ") == 8 and "| sparse MERIT | " in text
    assert (tmp_path / "f1.png").stat().st_size > 1000


def test_missing_run_is_a_clear_error(expdir, tmp_path):
    with pytest.raises(Exception, match="seed 3: no .*merit_ser_only_seed3"):
        table.load_runs(expdir, (1, 3))
