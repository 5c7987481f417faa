"""merit_score (stage 10: scoring, RESULTS.md) and merit_compare (stage 11) on tiny
generated reference/hypothesis directories."""

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet2_merit.bin import merit_compare, merit_score
from espnet2_merit.metrics.se import pesq_wb, segmental_snr, si_sdr
from espnet2_merit.metrics.ser import classification_metrics
from espnet2_merit.metrics.significance import (
    paired_randomization_test,
    paired_wilcoxon,
)
from espnet2_merit.utils.synthetic import voice

FS = 16000
CLASSES = ["A", "S", "H", "N"]
UTTS = [f"spk{i % 2}-utt{i}" for i in range(6)]
REF_LABELS = ["A", "S", "H", "N", "A", "S"]


def _write(path: Path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(lines)), encoding="utf-8")


@pytest.fixture(scope="module")
def ref_dir(tmp_path_factory):
    """6 utterances: clean harmonic speech, a 0 dB noisy mixture and the noise,
    with labels and attributes."""
    root = tmp_path_factory.mktemp("ref")
    rng = np.random.default_rng(0)
    wav, spk1, emo, attr = [], [], [], []
    for utt, label in zip(UTTS, REF_LABELS):
        clean = voice(label, rng.uniform(1.0, 1.4), FS, rng) * 0.5
        # Speech-shaped noise (random phase): PESQ is not stuck at its floor.
        spec = np.fft.rfft(clean)
        noise = np.fft.irfft(
            np.abs(spec) * np.exp(2j * np.pi * rng.random(len(spec))), len(clean)
        )
        noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2))
        (root / "wav").mkdir(exist_ok=True)
        for name, x in (("clean", clean), ("noisy", clean + noise), ("noise", noise)):
            soundfile.write(root / "wav" / f"{utt}_{name}.wav", x, FS, subtype="FLOAT")
        wav.append((utt, root / "wav" / f"{utt}_noisy.wav"))
        spk1.append((utt, root / "wav" / f"{utt}_clean.wav"))
        emo.append((utt, label))
        attr.append((utt, " ".join(f"{v:.2f}" for v in rng.uniform(1, 7, 3))))
    _write(root / "wav.scp", wav)
    _write(root / "spk1.scp", spk1)
    _write(root / "emotion", emo)
    _write(root / "emotion_attr", attr)
    return root


def make_hyp(ref: Path, out: Path, wrong=(1,), enh_gain=0.3, parts=None, seed=0):
    """A fake decoded set: labels wrong at indices ``wrong``, enhanced speech =
    clean + ``enh_gain`` x the mixture's noise, routing usage files."""
    parts = parts or ("emotion", "posteriors", "emotion_attr", "spk1.scp", "routing")
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True)
    (out / "emotion_list").write_text("\n".join(CLASSES) + "\n")
    emo, post, attr, spk1, usage = [], [], [], [], []
    for i, (utt, label) in enumerate(zip(UTTS, REF_LABELS)):
        hyp = CLASSES[(CLASSES.index(label) + 1) % 4] if i in wrong else label
        p = np.full(4, 0.1)
        p[CLASSES.index(hyp)] = 0.7
        emo.append((utt, hyp))
        post.append((utt, " ".join(f"{v:.6f}" for v in p)))
        attr.append((utt, " ".join(f"{v:.4f}" for v in rng.uniform(1, 7, 3))))
        clean, _ = soundfile.read(ref / "wav" / f"{utt}_clean.wav")
        noise, _ = soundfile.read(ref / "wav" / f"{utt}_noise.wav")
        path = out / "wavs" / f"{utt}.wav"
        path.parent.mkdir(exist_ok=True)
        soundfile.write(path, clean + enh_gain * noise, FS, subtype="FLOAT")
        spk1.append((utt, path))
        u = rng.dirichlet(np.ones(3))
        usage.append((utt, " ".join(f"{v:.4f}" for v in u)))
    files = {"emotion": emo, "posteriors": post, "emotion_attr": attr, "spk1.scp": spk1}
    for name, lines in files.items():
        if name in parts:
            _write(out / name, lines)
    if "routing" in parts:
        for task in ("se", "ser"):
            _write(out / "routing" / f"{task}_usage", usage)
    return out


def score(ref: Path, hyp: Path, *extra):
    merit_score.main(
        ["--ref_dir", str(ref), "--hyp_dir", str(hyp), "--out_dir", str(hyp / "score"),
         "--nj", "2", *extra]
    )  # fmt: skip
    return hyp / "score"


@pytest.fixture(scope="module")
def scored(ref_dir, tmp_path_factory):
    hyp = make_hyp(ref_dir, tmp_path_factory.mktemp("exp") / "m" / "decode" / "x")
    return hyp, score(ref_dir, hyp)


def _tsv(path):
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    return header, {
        r.split("\t")[0]: dict(zip(header, r.split("\t"))) for r in lines[1:]
    }


def test_score_end_to_end(ref_dir, scored):
    hyp, out = scored
    header, rows = _tsv(out / "per_utt.tsv")
    se_cols = ["ssnr", "pesq", "stoi", "sisdr"]
    assert header == (
        ["utt", "ref", "hyp"]
        + [f"{s}_{a}" for a in merit_score.DEFAULT_ATTRIBUTES for s in ("ref", "hyp")]
        + se_cols
        + [c + "_noisy" for c in se_cols]
    )
    assert sorted(rows) == sorted(UTTS)
    # One utterance recomputed directly.
    utt = UTTS[2]
    clean, _ = soundfile.read(ref_dir / "wav" / f"{utt}_clean.wav")
    noisy, _ = soundfile.read(ref_dir / "wav" / f"{utt}_noisy.wav")
    enh, _ = soundfile.read(hyp / "wavs" / f"{utt}.wav")
    assert float(rows[utt]["ssnr"]) == pytest.approx(
        segmental_snr(clean, enh, FS), abs=1e-5
    )
    assert float(rows[utt]["ssnr_noisy"]) == pytest.approx(
        segmental_snr(clean, noisy, FS), abs=1e-5
    )
    assert float(rows[utt]["pesq"]) == pytest.approx(pesq_wb(clean, enh, FS), abs=1e-5)
    assert float(rows[utt]["sisdr_noisy"]) == pytest.approx(
        si_sdr(clean, noisy), abs=1e-5
    )

    summary = json.loads((out / "summary.json").read_text())
    want = classification_metrics(REF_LABELS, [rows[u]["hyp"] for u in UTTS], CLASSES)
    for key in ("f1_macro", "f1_micro", "accuracy", "precision_macro", "recall_macro"):
        assert summary["ser"][key] == pytest.approx(want[key])
    assert summary["ser"]["confusion_matrix"] == want["confusion_matrix"]
    assert summary["ser"]["f1_per_class"]["S"] == pytest.approx(
        want["f1_per_class"]["S"]
    )
    assert set(summary["attributes"]["ccc"]) == set(merit_score.DEFAULT_ATTRIBUTES)
    se = summary["se"]
    for m in se_cols:
        mean = np.mean([float(rows[u][m]) for u in UTTS])
        assert se["enhanced"][m] == pytest.approx(mean, abs=1e-5)
        assert se["enhanced"][m] > se["noisy"][m]  # 10 dB better than the input
    assert "ALL frames" in se["ssnr_definition"]
    assert (out / "confusion_matrix.png").stat().st_size > 1000
    assert not list(out.glob("*.tmp"))


def test_rerun_skips_until_inputs_change(ref_dir, scored, caplog):
    hyp, out = scored
    before = (out / "summary.json").stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        score(ref_dir, hyp)
    assert "up to date" in caplog.text
    assert (out / "summary.json").stat().st_mtime_ns == before
    # New hypotheses (a re-decode): scored again.
    text = (hyp / "emotion").read_text()
    try:
        (hyp / "emotion").write_text(text.replace(f"{UTTS[0]} A", f"{UTTS[0]} N"))
        score(ref_dir, hyp)
        summary = json.loads((out / "summary.json").read_text())
        assert summary["ser"]["accuracy"] == pytest.approx(4 / 6)
        # Other options: scored again.
        score(ref_dir, hyp, "--attribute_names", "aro", "val", "dom")
        header, _ = _tsv(out / "per_utt.tsv")
        assert "hyp_dom" in header
    finally:
        (hyp / "emotion").write_text(text)
        score(ref_dir, hyp)


def test_missing_or_extra_hyp_keys_are_errors(ref_dir, tmp_path):
    hyp = make_hyp(ref_dir, tmp_path / "h", parts=("emotion",))
    lines = (hyp / "emotion").read_text().splitlines()
    (hyp / "emotion").write_text("\n".join(lines[:3] + lines[4:]) + "\n")
    removed = lines[3].split()[0]
    with pytest.raises(SystemExit, match=f"{hyp / 'emotion'}.*'{removed}'"):
        score(ref_dir, hyp)
    (hyp / "emotion").write_text("\n".join(lines + ["bogus A"]) + "\n")
    with pytest.raises(SystemExit, match="'bogus' is not in the reference"):
        score(ref_dir, hyp)
    (hyp / "emotion").write_text("\n".join(lines[:-1] + [f"{UTTS[-1]} X"]) + "\n")
    with pytest.raises(SystemExit, match=r"h/emotion: labels \['X'\] are not in"):
        score(ref_dir, hyp)


def test_ser_only_and_se_only(ref_dir, scored, tmp_path):
    ser = make_hyp(ref_dir, tmp_path / "ser", parts=("posteriors",), wrong=(0, 1))
    summary = json.loads((score(ref_dir, ser) / "summary.json").read_text())
    assert "se" not in summary and "attributes" not in summary
    assert summary["ser"]["accuracy"] == pytest.approx(4 / 6)  # argmax of posteriors
    se = make_hyp(ref_dir, tmp_path / "se", parts=("spk1.scp",))
    out = score(ref_dir, se, "--nj", "1")
    summary = json.loads((out / "summary.json").read_text())
    assert "ser" not in summary and set(summary["se"]) >= {"enhanced", "noisy"}
    assert not (out / "confusion_matrix.png").exists()
    header, rows = _tsv(out / "per_utt.tsv")
    assert "ref" not in header and "pesq_noisy" in header
    # One process (here) and two (the scored fixture) give the same numbers.
    _, rows2 = _tsv(scored[1] / "per_utt.tsv")
    for u in UTTS:
        assert [rows[u][c] for c in header] == [rows2[u][c] for c in header]


def test_se_length_mismatch_names_utterance(ref_dir, tmp_path):
    hyp = make_hyp(ref_dir, tmp_path / "h", parts=("spk1.scp",))
    path = hyp / "wavs" / f"{UTTS[4]}.wav"
    x, _ = soundfile.read(path)
    soundfile.write(path, x[:-2000], FS)
    with pytest.raises(SystemExit, match=f"'{UTTS[4]}'.*differ by 2000"):
        score(ref_dir, hyp)


def test_noisy_input_scored_once_per_set(ref_dir, tmp_path, monkeypatch):
    """Every system decoded on a set shares its noisy-input scores: the second
    system's scoring reads no noisy wav; a rewritten wav.scp invalidates them."""
    ref = tmp_path / "ref"
    shutil.copytree(ref_dir, ref, ignore=shutil.ignore_patterns("noisy_scores.json"))
    loads = []
    load = merit_score._load
    monkeypatch.setattr(
        merit_score,
        "_load",
        lambda p, u, what: (loads.append(what), load(p, u, what))[1],
    )

    def noisy_columns(hyp):
        _, rows = _tsv(score(ref, hyp, "--nj", "1") / "per_utt.tsv")
        return {u: (r["pesq_noisy"], r["ssnr_noisy"]) for u, r in rows.items()}

    first = noisy_columns(make_hyp(ref, tmp_path / "a"))
    assert loads.count("noisy") == len(UTTS) and (ref / "noisy_scores.json").is_file()
    loads.clear()
    second = noisy_columns(make_hyp(ref, tmp_path / "b", enh_gain=0.6, seed=2))
    assert loads.count("noisy") == 0 and loads.count("enhanced") == len(UTTS)
    assert second == first
    (ref / "wav.scp").write_text((ref / "wav.scp").read_text())  # new mtime
    noisy_columns(make_hyp(ref, tmp_path / "c"))
    assert loads.count("noisy") == len(UTTS)


def test_several_sets_in_one_call(ref_dir, tmp_path, capsys):
    hyps = [
        make_hyp(ref_dir, tmp_path / n, wrong=w) for n, w in (("a", ()), ("b", (0, 1)))
    ]
    cmd = []
    for hyp in hyps:
        cmd += ["--ref_dir", str(ref_dir), "--hyp_dir", str(hyp), "--out_dir",
                str(hyp / "score")]  # fmt: skip
    merit_score.main(cmd)
    f1 = [json.loads((h / "score" / "summary.json").read_text())["ser"]["f1_macro"]
          for h in hyps]  # fmt: skip
    assert f1[0] == 1.0 and f1[1] < 1.0
    with pytest.raises(SystemExit):
        merit_score.main(cmd[:-2])
    assert "go together: got 2, 2 and 1" in capsys.readouterr().err


def _parse_tables(markdown: str):
    """{section title: [row dicts]} of every '### title' + markdown table."""
    tables = {}
    for block in re.split(r"^### ", markdown, flags=re.M)[1:]:
        title, *lines = block.splitlines()
        rows = [line for line in lines if line.startswith("|")]
        if not rows:
            continue
        header = [c.strip() for c in rows[0].strip("|").split("|")]
        tables[title] = [
            dict(zip(header, (c.strip() for c in r.strip("|").split("|"))))
            for r in rows[2:]
        ]
    return tables


def test_results_md(scored, tmp_path, capsys):
    hyp, _ = scored
    exp = tmp_path / "exp" / "sparse"
    names = ["test1_seen_snr-5", "test1_seen_snr10", "test1_seen_snr0",
             "test1_unseen_snr5", "dev_extra"]  # fmt: skip
    f1 = {}
    for i, name in enumerate(names):
        shutil.copytree(hyp, exp / "decode" / name)
        path = exp / "decode" / name / "score" / "summary.json"
        summary = json.loads(path.read_text())
        summary["ser"]["f1_macro"] = f1[name] = 0.1 * (i + 1)
        path.write_text(json.dumps(summary))
    merit_score.main(["--results", str(exp)])
    printed = capsys.readouterr().out
    text = (exp / "RESULTS.md").read_text()
    assert "# RESULTS: sparse" in text and "- date: `" in text
    assert "Segmental SNR" in text and "ALL frames" in text
    tables = _parse_tables(text)
    seen = tables["test1, seen noise"]
    assert [r["SNR (dB)"] for r in seen] == ["-5", "0", "10"]
    for row, name in zip(
        seen, ["test1_seen_snr-5", "test1_seen_snr0", "test1_seen_snr10"]
    ):
        assert float(row["F1-macro"]) == pytest.approx(f1[name])
        assert float(row["SSNR enh"]) > float(row["SSNR noisy"])
        assert row["utts"] == "6"
    assert [r["SNR (dB)"] for r in tables["test1, unseen noise"]] == ["5"]
    assert [r["set"] for r in tables["Other sets"]] == ["dev_extra"]
    assert "test1, seen noise" in printed
    # Expert usage: mean over utterances of the usage files.
    usage = np.loadtxt(hyp / "routing" / "se_usage", usecols=(1, 2, 3)).mean(0)
    rows = tables["SE task, test1, seen noise"]
    assert [float(rows[0][f"expert {i}"]) for i in range(3)] == pytest.approx(
        usage, abs=1e-3
    )
    for task in ("se", "ser"):
        for noise in ("seen", "unseen"):
            image = exp / "images" / f"expert_usage_{task}_test1_{noise}.png"
            assert image.stat().st_size > 1000
    assert merit_score.parse_set_name("test2_unseen_snr-2.5") == (
        "test2",
        "unseen",
        -2.5,
    )


def test_results_of_another_decode_dir_go_into_it(scored, tmp_path):
    """The SE pre-processing cascade decodes into ``decode_enh_<se exp>``: its
    RESULTS.md and images go there and leave the model's own RESULTS.md alone."""
    hyp, _ = scored
    exp = tmp_path / "sparse"
    shutil.copytree(hyp, exp / "decode" / "test1_seen_snr-5")
    shutil.copytree(hyp, exp / "decode_enh_se" / "test1_seen_snr-5")
    merit_score.main(["--results", str(exp)])
    own = (exp / "RESULTS.md").read_text()
    other = exp / "decode_enh_se"
    merit_score.main(["--results", str(exp), "--decode_dir", str(other)])
    assert (exp / "RESULTS.md").read_text() == own
    text = (other / "RESULTS.md").read_text()
    assert "# RESULTS: sparse, decode_enh_se" in text
    assert "](images/expert_usage_se_test1_seen.png)" in text
    assert (other / "images" / "expert_usage_se_test1_seen.png").is_file()


def test_results_without_scores_is_error(tmp_path):
    with pytest.raises(SystemExit, match="no scored set"):
        merit_score.main(["--results", str(tmp_path)])


@pytest.fixture(scope="module")
def two_systems(ref_dir, scored, tmp_path_factory):
    """System 'good' (the scored fixture) and 'base' (more label errors, enhanced
    output much noisier) on test1_seen_snr-5."""
    hyp, _ = scored
    root = tmp_path_factory.mktemp("systems")
    good = root / "good"
    shutil.copytree(hyp, good / "decode" / "test1_seen_snr-5")
    base_hyp = make_hyp(
        ref_dir, root / "base" / "decode" / "test1_seen_snr-5", wrong=(0, 1, 3),
        enh_gain=0.9, seed=1,
    )  # fmt: skip
    score(ref_dir, base_hyp)
    return root


def test_compare(two_systems, capsys):
    root = two_systems
    out = root / "compare" / "RESULTS.md"
    merit_compare.main(
        ["--systems", f"good={root / 'good'}", f"base={root / 'base'}",
         "--reference", "base", "--out", str(out), "--rounds", "500"]
    )  # fmt: skip
    text = out.read_text()
    assert "approximate randomization" in text and "Wilcoxon" in text
    rows = _parse_tables(text)["test1, seen noise, -5 dB"]
    assert [r["system"] for r in rows] == ["good", "base (ref)"]
    score_dirs = {
        n: root / n / "decode" / "test1_seen_snr-5" / "score" for n in ("good", "base")
    }
    summ = {
        n: json.loads((d / "summary.json").read_text()) for n, d in score_dirs.items()
    }
    per_utt = {n: _tsv(d / "per_utt.tsv")[1] for n, d in score_dirs.items()}

    f_good, f_base = summ["good"]["ser"]["f1_macro"], summ["base"]["ser"]["f1_macro"]
    test = paired_randomization_test(
        [per_utt["good"][u]["ref"] for u in UTTS],
        [per_utt["good"][u]["hyp"] for u in UTTS],
        [per_utt["base"][u]["hyp"] for u in UTTS],
        CLASSES,
        rounds=500,
    )
    rel = (f_good - f_base) / abs(f_base) * 100
    cell = rows[0]["F1-macro"]
    assert cell.startswith(f"{f_good:.4f} ({rel:+.1f}%")
    assert f"p={test.p_value:.3f}" in cell
    assert ("*" in cell) == (test.p_value < 0.05)
    assert rows[1]["F1-macro"] == f"{f_base:.4f}"

    wil = paired_wilcoxon(
        [float(per_utt["good"][u]["ssnr"]) for u in UTTS],
        [float(per_utt["base"][u]["ssnr"]) for u in UTTS],
    )
    s_good, s_base = (
        summ["good"]["se"]["enhanced"]["ssnr"],
        summ["base"]["se"]["enhanced"]["ssnr"],
    )
    cell = rows[0]["SSNR (dB)"]
    assert cell.startswith(
        f"{s_good:.2f} ({(s_good - s_base) / abs(s_base) * 100:+.1f}%*"
    )
    assert wil.p_value < 0.05 and f"p={wil.p_value:.3f}" in cell  # 6/6 better: 0.031
    data = json.loads(out.with_suffix(".json").read_text())
    vs = data["sets"]["test1_seen_snr-5"]["good"]["ssnr"]["vs"]["base"]
    assert vs["p_value"] == pytest.approx(wil.p_value) and vs["significant"]
    assert "good" in capsys.readouterr().out


def test_compare_takes_a_decode_dir(two_systems, tmp_path):
    root = two_systems
    out = tmp_path / "RESULTS.md"
    merit_compare.main(
        ["--systems", f"good={root / 'good'}", f"base={root / 'base' / 'decode'}",
         "--reference", "base", "--out", str(out), "--rounds", "100"]
    )  # fmt: skip
    rows = _parse_tables(out.read_text())["test1, seen noise, -5 dB"]
    assert [r["system"] for r in rows] == ["good", "base (ref)"]
    assert "%" in rows[0]["F1-macro"]


def test_compare_two_references_and_errors(two_systems, tmp_path):
    root = two_systems
    systems = [f"good={root / 'good'}", f"base={root / 'base'}"]
    out = tmp_path / "RESULTS.md"
    merit_compare.main(["--systems", *systems, "--reference", "good", "--reference2",
                        "base", "--out", str(out), "--rounds", "100"])  # fmt: skip
    rows = _parse_tables(out.read_text())["test1, seen noise, -5 dB"]
    assert "vs good" in rows[1]["F1-macro"] and "vs base" in rows[0]["PESQ"]
    with pytest.raises(SystemExit, match="'nobody' is not one of the systems"):
        merit_compare.main(["--systems", *systems, "--reference", "nobody",
                            "--out", str(out)])  # fmt: skip
    with pytest.raises(SystemExit, match="expected name=dir"):
        merit_compare.main(["--systems", str(root / "good"), "--reference", "good",
                            "--out", str(out)])  # fmt: skip
    # Different utterances in the two systems' scores of a set: an error naming it.
    other = tmp_path / "other"
    shutil.copytree(root / "base", other)
    tsv = other / "decode" / "test1_seen_snr-5" / "score" / "per_utt.tsv"
    tsv.write_text("\n".join(tsv.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(
        SystemExit, match="set 'test1_seen_snr-5'.*different utterances"
    ):
        merit_compare.main(["--systems", f"good={root / 'good'}", f"other={other}",
                            "--reference", "other", "--out", str(out)])  # fmt: skip
