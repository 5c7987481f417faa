"""bench/methods_table.py: mean ± std over seeds, relative changes over the
references (with the dB difference and a flag for a base near 0 dB) and
significance with the seeds' (seed, utterance) pairs pooled."""

import json
import re
import shutil
import zlib

import numpy as np
import pytest
from merit_testing import load_local

from espnet2_merit.scoring import registry
from espnet2_merit.scoring.significance import (
    paired_randomization_test,
    paired_wilcoxon,
)

table = load_local("methods_table", "bench")
SEEDS = (1, 2)
SETS = ("test1_seen_snr-5", "test1_unseen_snr5", "test1_rirunseen_seen_snr5")
CLASSES = ["A", "S", "H", "N"]
UTTS = [f"u{i}" for i in range(12)]
REFS = [CLASSES[i % 4] for i in range(12)]
WAVE = [m.name for m in registry.metrics_of("waveform")]
SMALL = ("naive MTL", SETS[0])  # its SSNR there: about 0.5 dB
SPEECH_TEXT = (
    "speech only (WavLM fine-tuned, one step)",
    "text only (transcripts, RoBERTa fine-tuned)",
    "speech + text, two-run protocol (IS 2025)",
)
NO_SE = ("SER only (noisy input)", *SPEECH_TEXT)  # systems without an SE task


def _run(decode, system, seed, set_name):
    """A scored set (summary.json and per_utt.tsv as merit_score writes them) with
    random predictions and SE scores (no SE task for SER only)."""
    rng = np.random.default_rng(zlib.crc32(f"{system} {seed} {set_name}".encode()))
    hyp = [r if rng.random() < 0.6 else CLASSES[rng.integers(4)] for r in REFS]
    se = system not in NO_SE
    cols = {f"se_{m}": rng.normal(5, 2, len(UTTS)) for m in WAVE} if se else {}
    if (system, set_name) == SMALL:
        cols["se_ssnr"] = rng.normal(0.5, 0.1, len(UTTS))
    header = ["utt", "ser_ref", "ser_hyp"] + list(cols)
    rows = [
        [utt, REFS[i], hyp[i]] + [f"{c[i]:.4f}" for c in cols.values()]
        for i, utt in enumerate(UTTS)
    ]
    score = decode / set_name / "score"
    score.mkdir(parents=True)
    text = "\n".join("\t".join(r) for r in [header] + rows) + "\n"
    (score / "per_utt.tsv").write_text(text)
    tasks = {
        "ser": {
            "name": "emotion",
            "kind": "label",
            "file": "emotion",
            "scores": {"f1_macro": rng.uniform(0.2, 0.8)},
            "details": {"classes": CLASSES},
        }
    }
    if se:
        means = {m: float(np.mean(np.round(cols[f"se_{m}"], 4))) for m in WAVE}
        tasks["se"] = {"kind": "waveform", "file": "spk1.scp", "scores": means}
    summary = {"set": set_name, "num_utts": len(UTTS), "tasks": tasks}
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


@pytest.fixture(scope="module")
def made(expdir, tmp_path_factory):
    out = tmp_path_factory.mktemp("table") / "methods.md"
    table.main(["--expdir", str(expdir), "--seeds", *map(str, SEEDS),
                "--out", str(out), "--plot", str(out.parent / "f1.png")])  # fmt: skip
    return out, json.loads(out.with_suffix(".json").read_text())


def test_means_relative_changes_and_pooled_tests(expdir, made):
    out, results = made
    runs = table.load_runs(expdir, SEEDS)
    sparse, mtl = runs["sparse MERIT"], runs["naive MTL"]
    f1 = [r.value(SETS[0], "ser", "f1_macro") for r in sparse]
    cell = results["ser_f1_macro"]["test1, seen"]["sparse MERIT"]["-5"]
    assert cell["mean"] == pytest.approx(np.mean(f1))
    assert cell["std"] == pytest.approx(np.std(f1, ddof=1))
    ref_mean = np.mean([r.value(SETS[0], "ser", "f1_macro") for r in mtl])
    vs = cell["vs"]["naive MTL"]
    assert vs["relative_percent"] == pytest.approx(
        (np.mean(f1) - ref_mean) / ref_mean * 100
    )
    # Pooled over seeds: 2 x 12 pairs, the same p-value as a direct test.
    direct = paired_randomization_test(
        _column(sparse, SETS[0], "ser_ref"), _column(sparse, SETS[0], "ser_hyp"),
        _column(mtl, SETS[0], "ser_hyp"), CLASSES,
    )  # fmt: skip
    assert vs["pairs"] == 24 and vs["p_value"] == pytest.approx(direct.p_value)
    ssnr = results["se_ssnr"]["test1, unseen"]["sparse MERIT"]["5"]["vs"]["naive MTL"]
    wil = paired_wilcoxon(
        [float(x) for x in _column(sparse, SETS[1], "se_ssnr")],
        [float(x) for x in _column(mtl, SETS[1], "se_ssnr")],
    )
    assert ssnr["p_value"] == pytest.approx(wil.p_value)
    # The SER-only system has no SE scores; references get no comparison to
    # themselves; the markdown has a table per headline metric of each task (no
    # CCC: no run has an attribute task) and noise set.
    assert results["se_ssnr"]["test1, seen"]["SER only (noisy input)"] == {}
    assert (
        "naive MTL"
        not in results["ser_f1_macro"]["test1, seen"]["naive MTL"]["-5"]["vs"]
    )
    text = out.read_text()
    titles = re.findall(r"^### (.*), test1, (?:un)?seen noise$", text, flags=re.M)
    assert titles == [t for t in ("SER F1-macro", "SE SSNR (dB)", "SE PESQ",
                                  "SE STOI") for _ in (0, 1)]  # fmt: skip
    assert "| sparse MERIT | " in text
    assert (out.parent / "f1.png").stat().st_size > 1000


def _cells(text: str, title: str, system: str):
    """The cells of a system's row in the table called ``title``."""
    block = text.split(f"### {title}\n", 1)[1].split("###", 1)[0]
    row = next(r for r in block.splitlines() if r.startswith(f"| {system} |"))
    return [c.strip() for c in row.strip("|").split("|")][1:]


def test_db_metrics_show_the_difference_and_flag_a_base_near_0_db(made):
    """A percentage of a base near 0 dB says nothing (naive MTL's SSNR is about
    0.5 dB on the seen -5 dB set): the dB difference stands beside it, flagged."""
    out, results = made
    text = out.read_text()
    for group, snr, small in (("seen", "-5", True), ("unseen", "5", False)):
        cell = results["se_ssnr"][f"test1, {group}"]["sparse MERIT"][snr]
        vs = cell["vs"]["naive MTL"]
        assert vs["small_base"] is small
        assert (abs(vs["reference_mean"]) <= 1) is small
        diff = cell["mean"] - vs["reference_mean"]
        assert vs["difference"] == pytest.approx(diff)
        star = "*" if vs["p_value"] < 0.05 else ""
        want = f"{vs['relative_percent']:+.1f}%{star} ({diff:+.2f} dB)" + (
            "†" if small else ""
        )
        (shown,) = _cells(text, f"SE SSNR (dB), test1, {group} noise", "sparse MERIT")
        assert shown.endswith(f" / {want})"), shown  # after the SE pre-processing one
        if not small:
            assert "†" not in shown
    # Only dB metrics: PESQ and F1-macro cells show percentages alone.
    for title in ("SE PESQ", "SER F1-macro"):
        (shown,) = _cells(text, f"{title}, test1, seen noise", "sparse MERIT")
        assert "dB" not in shown and "†" not in shown and "%" in shown
    assert "±1 dB of 0 dB" in text


def test_reverberant_sets_get_a_second_table(made):
    out, results = made
    text = out.read_text()
    dry, reverb = text.split("## Reverberant test sets", 1)
    assert "reverberant" not in dry.split("### Routing")[0]
    titles = re.findall(r"^### (.*), test1, reverberant \(unseen rooms\), seen noise$",
                        reverb, flags=re.M)  # fmt: skip
    assert titles == ["SER F1-macro", "SE SSNR (dB)", "SE PESQ", "SE STOI"]
    cell = results["ser_f1_macro"]["test1_rirunseen, seen"]["sparse MERIT"]["5"]
    assert "naive MTL" in cell["vs"]
    (shown,) = _cells(
        text, "SER F1-macro, test1, reverberant (unseen rooms), seen noise",
        "sparse MERIT",
    )  # fmt: skip
    assert shown.startswith(f"{cell['mean']:.4f} ± ")


def test_speech_and_text_systems_are_rows_of_the_ser_table(made):
    """The two-run protocol's three systems (bench/methods.sh speech_only,
    text_only, speech_text): F1-macro rows with the references' comparisons, no
    SE rows (no SE task) and no CCC table (no attribute task)."""
    out, results = made
    text = out.read_text()
    for name in SPEECH_TEXT:
        cell = results["ser_f1_macro"]["test1, seen"][name]["-5"]
        fused = name == SPEECH_TEXT[-1]  # also against its speech branch
        assert (
            list(cell["vs"])
            == ["SE pre-processing", "naive MTL"] + [SPEECH_TEXT[0]] * fused
        )
        (shown,) = _cells(text, "SER F1-macro, test1, seen noise", name)
        assert shown.startswith(f"{cell['mean']:.4f} ± "), shown
        assert results["se_ssnr"]["test1, seen"][name] == {}
        ssnr = text.split("### SE SSNR (dB), test1, seen noise\n", 1)[1]
        assert f"| {name} |" not in ssnr.split("###", 1)[0]
    assert "CCC" not in "".join(re.findall(r"^### .*$", text, flags=re.M))


def test_missing_seed_is_a_clear_error(expdir, tmp_path):
    part = tmp_path / "part"
    shutil.copytree(expdir / "merit_naive_mtl_seed1", part / "merit_naive_mtl_seed1")
    with pytest.raises(Exception, match="seed 2: no .*merit_naive_mtl_seed2"):
        table.load_runs(part, SEEDS)
    with pytest.raises(Exception, match="no system has scored runs"):
        table.load_runs(tmp_path / "none", SEEDS)


def test_a_part_of_the_systems_is_tabulated_alone(expdir, tmp_path):
    """methods.sh --systems "speech_only text_only speech_text": their rows only,
    the fused model compared with its speech branch (the global references did
    not run)."""
    part = tmp_path / "part"
    for name in SPEECH_TEXT:
        exp = table.SYSTEMS[name][0]
        for seed in SEEDS:
            d = f"merit_{exp}_seed{seed}"
            shutil.copytree(expdir / d, part / d)
    out = tmp_path / "m.md"
    table.main(["--expdir", str(part), "--seeds", *map(str, SEEDS),
                "--out", str(out)])  # fmt: skip
    results = json.loads(out.with_suffix(".json").read_text())
    rows = results["ser_f1_macro"]["test1, seen"]
    assert list(rows) == list(SPEECH_TEXT)
    assert list(rows[SPEECH_TEXT[-1]]["-5"]["vs"]) == [SPEECH_TEXT[0]]
    assert rows[SPEECH_TEXT[0]]["-5"]["vs"] == {}
    text = out.read_text()
    assert f"over {SPEECH_TEXT[0]} (for {SPEECH_TEXT[-1]})," in text
    assert "naive MTL" not in text


def test_methods_sh_systems_have_labels_and_valid_fusion_options():
    """Each system bench/methods.sh trains is a row of the table, and its YAML
    overrides (``--fusion_conf key=value`` over the tiny sparse config) build."""
    import argparse
    import shlex

    import yaml
    from espnet2.utils.nested_dict_action import NestedDictAction
    from merit_testing import REPO, SPARSE_TINY

    from espnet2_merit.merit.fusion.sparse_moe import SparseMoEFusion

    script = (REPO / "bench" / "methods.sh").read_text()
    systems = re.search(r'^all_systems="([^"]+)"', script, re.M).group(1).split()
    assert set(systems) == {exp for exp, _ in table.SYSTEMS.values()} | {"se_only"}
    assert {"speech_only", "text_only", "speech_text"} <= set(systems)
    # speech_text: the fusion step on the speech_only and text_only runs of its seed
    fused = script.split("\none_run() {", 1)[1].split("\n}\n", 1)[0]
    branches = ("speech=${expdir}/merit_speech_only_seed${seed} "
                "text=${expdir}/merit_text_only_seed${seed}")  # fmt: skip
    assert f'--branch_configs "{branches}"' in fused
    assert '--branch_init "speech=frontend text=text_frontend"' in fused
    extra = dict(re.findall(r'^\s+\[(\w+)\]="(--fusion_conf[^"]*)"', script, re.M))
    assert {"sparse_shared", "sparse_topp"} <= set(extra) <= set(systems)
    base = yaml.safe_load(SPARSE_TINY.read_text())["fusion_conf"]
    parser = argparse.ArgumentParser()
    parser.add_argument("--fusion_conf", action=NestedDictAction, default=base)
    for system, options in extra.items():
        conf = parser.parse_args(shlex.split(options)).fusion_conf
        fusion = SparseMoEFusion(2, 4, ("se", "ser"), **conf)
        if system == "sparse_topp":
            assert fusion.rules["ser"].top_p == 0.6 and fusion.rules["ser"].max_k == 2
        if system == "sparse_shared":
            assert len(fusion.shared_experts) == 1


def test_routing_table_has_experts_per_frame():
    from types import SimpleNamespace

    def run(k):
        stats = {"busiest_share": 0.5, "usage_entropy": 0.9, "speech_noise_tv": 0.1}
        if k is not None:
            stats["mean_experts"] = k
        return SimpleNamespace(summaries={"t": {"routing": {"ser": stats}}})

    text = table.routing_table({"top-p": [run(1.5), run(1.7)], "old": [run(None)]})
    rows = {line.split("|")[1].strip(): line for line in text.splitlines()[-2:]}
    assert "experts/frame" in text
    assert rows["top-p"].rstrip(" |").endswith("1.600 ± 0.141")
    assert rows["old"].rstrip(" |").endswith("—")
