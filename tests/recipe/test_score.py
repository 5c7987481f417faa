"""merit_score (stage 10: scoring, RESULTS.md) and merit_compare (stage 11) on tiny
generated reference data directories and decode directories in the format of
``espnet2_merit.inference.decode_dir`` (a file per task and ``outputs.json``)."""

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet2_merit.bin import merit_compare, merit_score
from espnet2_merit.merit.heads.targets import LabelTarget, VectorTarget, WaveformTarget
from espnet2_merit.scoring import registry, set_scoring
from espnet2_merit.scoring.registry import Metric
from espnet2_merit.scoring.results import parse_set_name, split_rooms
from espnet2_merit.scoring.se import pesq_wb, segmental_snr, si_sdr, stoi
from espnet2_merit.scoring.ser import attribute_metrics, classification_metrics
from espnet2_merit.scoring.significance import (
    paired_randomization_test,
    paired_wilcoxon,
)
from espnet2_merit.utils.synthetic import voice

FS = 16000
CLASSES = ["A", "S", "H", "N"]
ATTRS = ["arousal", "valence", "dominance"]
UTTS = [f"spk{i % 2}-utt{i}" for i in range(6)]
REF_LABELS = ["A", "S", "H", "N", "A", "S"]
# The tasks of the decoded sets, as a model's heads declare them.
TARGETS = {
    "se": WaveformTarget("speech_ref1"),
    "ser": LabelTarget("emotion", CLASSES, "--emotion_list"),
    "attr": VectorTarget("emotion_attr", ATTRS),
}
WAVE = [m.name for m in registry.metrics_of("waveform")]
LABEL = [m.name for m in registry.metrics_of("label")]
SET = "test1_seen_snr-5"


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


def fresh_ref(ref_dir: Path, dest: Path, drop=()) -> Path:
    """A copy of the reference dir without its noisy-input cache (and ``drop``)."""
    shutil.copytree(
        ref_dir, dest, ignore=shutil.ignore_patterns("noisy_scores.json", *drop)
    )
    return dest


def make_hyp(
    ref: Path,
    out: Path,
    wrong=(1,),
    enh_gain=0.3,
    tasks=("se", "ser", "attr"),
    seed=0,
    routing=True,
):
    """A decoded set as ``espnet2_merit.inference.decode_dir`` writes it: per task
    its target's file (labels wrong at indices ``wrong``, with posteriors; random
    attributes; enhanced speech = clean + ``enh_gain`` x the mixture's noise in
    ``wavs/<task>/``), routing usage files and the ``outputs.json`` manifest."""
    rng = np.random.default_rng(seed)
    targets = {t: TARGETS[t] for t in tasks}
    files = {}
    for i, (utt, label) in enumerate(zip(UTTS, REF_LABELS)):
        for task, target in targets.items():
            if target.kind == "label":
                hyp = CLASSES[(CLASSES.index(label) + 1) % 4] if i in wrong else label
                probs = np.full(len(CLASSES), 0.1)
                probs[CLASSES.index(hyp)] = 0.7
                lines = target.render(probs)
            elif target.kind == "vector":
                lines = target.render(rng.uniform(1, 7, len(target.names)))
            else:
                clean, _ = soundfile.read(ref / "wav" / f"{utt}_clean.wav")
                noise, _ = soundfile.read(ref / "wav" / f"{utt}_noise.wav")
                path = out / "wavs" / task / f"{utt}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                soundfile.write(path, clean + enh_gain * noise, FS, subtype="FLOAT")
                lines = {target.file_name: str(path.resolve())}
            for name, line in lines.items():
                files.setdefault(name, []).append((utt, line))
        if routing:
            usage = " ".join(f"{v:.4f}" for v in rng.dirichlet(np.ones(3)))
            for task in ("se", "ser"):
                files.setdefault(f"routing/{task}_usage", []).append((utt, usage))
    for name, lines in files.items():
        _write(out / name, lines)
    manifest = {
        "tasks": {t: target.describe() for t, target in targets.items()},
        "files": sorted(files),
    }
    (out / "outputs.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def score(ref: Path, hyp: Path, *extra):
    merit_score.main(
        ["--ref_dir", str(ref), "--hyp_dir", str(hyp), "--out_dir", str(hyp / "score"),
         "--nj", "2", *extra]
    )  # fmt: skip
    return hyp / "score"


def _summary(out: Path):
    return json.loads((out / "summary.json").read_text())


def _tsv(path):
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    return header, {
        r.split("\t")[0]: dict(zip(header, r.split("\t"))) for r in lines[1:]
    }


def _wav(path):
    return soundfile.read(path)[0]


@pytest.fixture(scope="module")
def scored(ref_dir, tmp_path_factory):
    """A three-task decoded set (se, ser, attr), scored with two processes."""
    hyp = make_hyp(ref_dir, tmp_path_factory.mktemp("exp") / "m" / "decode" / "x")
    return hyp, score(ref_dir, hyp)


def test_score_end_to_end(ref_dir, scored):
    hyp, out = scored
    header, rows = _tsv(out / "per_utt.tsv")
    assert header == (
        ["utt"]
        + [f"se_{m}" for m in WAVE]
        + [f"se_{m}_noisy" for m in WAVE]
        + ["ser_ref", "ser_hyp"]
        + [f"attr_{s}_{a}" for a in ATTRS for s in ("ref", "hyp")]
    )
    assert WAVE == ["ssnr", "pesq", "stoi", "sisdr"]
    assert sorted(rows) == sorted(UTTS)
    # One utterance recomputed directly.
    utt = UTTS[2]
    clean = _wav(ref_dir / "wav" / f"{utt}_clean.wav")
    noisy = _wav(ref_dir / "wav" / f"{utt}_noisy.wav")
    enh = _wav(hyp / "wavs" / "se" / f"{utt}.wav")
    for column, want in (
        ("se_ssnr", segmental_snr(clean, enh, FS)),
        ("se_ssnr_noisy", segmental_snr(clean, noisy, FS)),
        ("se_pesq", pesq_wb(clean, enh, FS)),
        ("se_stoi_noisy", stoi(clean, noisy, FS)),
        ("se_sisdr_noisy", si_sdr(clean, noisy)),
    ):
        assert float(rows[utt][column]) == pytest.approx(want, abs=1e-5), column

    summary = _summary(out)
    assert list(summary["tasks"]) == ["se", "ser", "attr"]
    assert summary["num_utts"] == 6 and summary["set"] == "x"
    ser = summary["tasks"]["ser"]
    assert (ser["name"], ser["kind"], ser["file"]) == ("emotion", "label", "emotion")
    hyp_labels = [rows[u]["ser_hyp"] for u in UTTS]
    assert hyp_labels == [REF_LABELS[0], CLASSES[2]] + REF_LABELS[2:]
    want = classification_metrics(REF_LABELS, hyp_labels, CLASSES)
    assert set(ser["scores"]) == set(LABEL)
    for key in LABEL:
        assert ser["scores"][key] == pytest.approx(want[key])
    assert ser["details"]["confusion_matrix"] == want["confusion_matrix"]
    assert ser["details"]["f1_per_class"]["S"] == pytest.approx(
        want["f1_per_class"]["S"]
    )
    attr = summary["tasks"]["attr"]
    assert attr["kind"] == "vector" and list(attr["details"]["ccc"]) == ATTRS
    ref_attr = np.loadtxt(ref_dir / "emotion_attr", usecols=(1, 2, 3))  # sorted
    hyp_attr = np.loadtxt(hyp / "emotion_attr", usecols=(1, 2, 3))
    assert attr["scores"]["ccc_mean"] == pytest.approx(
        attribute_metrics(ref_attr, hyp_attr, ATTRS)["ccc_mean"]
    )
    se = summary["tasks"]["se"]
    assert (se["kind"], se["file"]) == ("waveform", "spk1.scp")
    for m in WAVE:
        mean = np.mean([float(rows[u][f"se_{m}"]) for u in UTTS])
        assert se["scores"][m] == pytest.approx(mean, abs=1e-5)
        assert se["scores"][m] > se["noisy_scores"][m]  # 10 dB better than the input
        assert se["nan_counts"]["enhanced"][m] == 0
    assert "ALL frames" in se["ssnr_definition"]
    assert (out / "confusion_ser.png").stat().st_size > 1000
    assert not list(out.glob("*.tmp"))


def test_rerun_skips_until_inputs_change(ref_dir, scored, caplog):
    hyp, out = scored
    before = (out / "summary.json").stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        score(ref_dir, hyp)
    assert "up to date" in caplog.text
    assert (out / "summary.json").stat().st_mtime_ns == before
    text = (hyp / "emotion").read_text()
    manifest = (hyp / "outputs.json").read_text()
    try:
        # New hypotheses (a re-decode): scored again.
        (hyp / "emotion").write_text(text.replace(f"{UTTS[0]} A", f"{UTTS[0]} N"))
        score(ref_dir, hyp)
        assert _summary(out)["tasks"]["ser"]["scores"]["accuracy"] == pytest.approx(
            4 / 6
        )
        # Another task definition (value names in the manifest): scored again.
        other = json.loads(manifest)
        other["tasks"]["attr"]["names"] = ["aro", "val", "dom"]
        (hyp / "outputs.json").write_text(json.dumps(other))
        score(ref_dir, hyp)
        header, _ = _tsv(out / "per_utt.tsv")
        assert "attr_hyp_dom" in header and "attr_hyp_dominance" not in header
    finally:
        (hyp / "emotion").write_text(text)
        (hyp / "outputs.json").write_text(manifest)
        score(ref_dir, hyp)


def test_missing_or_extra_hyp_keys_are_errors(ref_dir, tmp_path):
    hyp = make_hyp(ref_dir, tmp_path / "h", tasks=("ser",))
    lines = (hyp / "emotion").read_text().splitlines()
    (hyp / "emotion").write_text("\n".join(lines[:3] + lines[4:]) + "\n")
    removed = lines[3].split()[0]
    with pytest.raises(SystemExit, match=f"{hyp / 'emotion'}.*'{removed}'"):
        score(ref_dir, hyp)
    (hyp / "emotion").write_text("\n".join(lines + ["bogus A"]) + "\n")
    with pytest.raises(SystemExit, match="'bogus' is not in the reference"):
        score(ref_dir, hyp)
    # A label outside the task's class list: an error naming the line.
    (hyp / "emotion").write_text("\n".join(lines[:-1] + [f"{UTTS[-1]} X"]) + "\n")
    with pytest.raises(
        SystemExit, match=rf"h/emotion:6: utterance '{UTTS[-1]}': label 'X' is not"
    ):
        score(ref_dir, hyp)
    assert not (hyp / "score" / "summary.json").exists()


def test_manifest_is_required_and_checked(ref_dir, tmp_path):
    hyp = make_hyp(ref_dir, tmp_path / "h", tasks=("ser", "attr"))
    manifest = json.loads((hyp / "outputs.json").read_text())
    (hyp / "emotion_attr").unlink()
    with pytest.raises(
        SystemExit, match=r"h/emotion_attr: no such file \(.*outputs.json lists it"
    ):
        score(ref_dir, hyp)
    manifest["tasks"]["ser"]["kind"] = "labels"
    (hyp / "outputs.json").write_text(json.dumps(manifest))
    with pytest.raises(SystemExit, match="outputs.json: task 'ser': expected a 'kind'"):
        score(ref_dir, hyp)
    (hyp / "outputs.json").write_text("{")
    with pytest.raises(SystemExit, match="outputs.json: not a decode manifest"):
        score(ref_dir, hyp)
    (hyp / "outputs.json").unlink()
    with pytest.raises(SystemExit, match="outputs.json: no such file"):
        score(ref_dir, hyp)


def test_ser_only_and_se_only(ref_dir, scored, tmp_path):
    ser = make_hyp(ref_dir, tmp_path / "ser", tasks=("ser",), wrong=(0, 1))
    summary = _summary(score(ref_dir, ser))
    assert list(summary["tasks"]) == ["ser"]
    assert summary["tasks"]["ser"]["scores"]["accuracy"] == pytest.approx(4 / 6)
    se = make_hyp(ref_dir, tmp_path / "se", tasks=("se",))
    out = score(ref_dir, se, "--nj", "1")
    summary = _summary(out)
    assert list(summary["tasks"]) == ["se"]
    assert set(summary["tasks"]["se"]["noisy_scores"]) == set(WAVE)
    assert not list(out.glob("confusion_*.png"))
    header, rows = _tsv(out / "per_utt.tsv")
    assert "ser_ref" not in header and "se_pesq_noisy" in header
    # One process (here) and two (the scored fixture) give the same numbers.
    _, rows2 = _tsv(scored[1] / "per_utt.tsv")
    for u in UTTS:
        assert [rows[u][c] for c in header] == [rows2[u][c] for c in header]


def test_se_length_mismatch_names_utterance(ref_dir, tmp_path):
    hyp = make_hyp(ref_dir, tmp_path / "h", tasks=("se",))
    path = hyp / "wavs" / "se" / f"{UTTS[4]}.wav"
    soundfile.write(path, _wav(path)[:-2000], FS)
    with pytest.raises(SystemExit, match=f"'{UTTS[4]}'.*differ by 2000"):
        score(ref_dir, hyp)


def _count_loads(monkeypatch):
    """The ``what`` of every wav scoring reads (one process: --nj 1)."""
    loads = []
    load = set_scoring._load
    monkeypatch.setattr(
        set_scoring,
        "_load",
        lambda p, u, what: (loads.append(what), load(p, u, what))[1],
    )
    return loads


def test_noisy_input_scored_once_per_set(ref_dir, tmp_path, monkeypatch):
    """Every system decoded on a set shares its noisy-input scores: the second
    system's scoring reads no noisy wav; a rewritten wav.scp invalidates them."""
    ref = fresh_ref(ref_dir, tmp_path / "ref")
    loads = _count_loads(monkeypatch)

    def noisy_columns(hyp):
        _, rows = _tsv(score(ref, hyp, "--nj", "1") / "per_utt.tsv")
        return {u: (r["se_pesq_noisy"], r["se_ssnr_noisy"]) for u, r in rows.items()}

    first = noisy_columns(make_hyp(ref, tmp_path / "a", tasks=("se",)))
    assert loads.count("noisy") == len(UTTS) and (ref / "noisy_scores.json").is_file()
    loads.clear()
    second = noisy_columns(make_hyp(ref, tmp_path / "b", enh_gain=0.6, seed=2))
    assert loads.count("noisy") == 0 and loads.count("enhanced") == len(UTTS)
    assert second == first
    (ref / "wav.scp").write_text((ref / "wav.scp").read_text())  # new mtime
    noisy_columns(make_hyp(ref, tmp_path / "c", tasks=("se",)))
    assert loads.count("noisy") == len(UTTS)


def _peak_db(clean, test, fs, utt=None):
    """A metric the registry does not have: peak level over the reference's."""
    return float(20 * np.log10(np.abs(test).max() / np.abs(clean).max()))


def test_metric_added_to_the_registry_is_scored_on_the_cached_noisy_input(
    ref_dir, tmp_path, monkeypatch
):
    """A set's noisy-input cache made before a metric was added lacks it: the next
    system on the set gets the metric for the noisy input too (computed for that
    metric only, then cached), not a KeyError for '<metric>_noisy'."""
    ref = fresh_ref(ref_dir, tmp_path / "ref")
    old = make_hyp(ref, tmp_path / "old", tasks=("se",))
    score(ref, old, "--nj", "1")
    cache = json.loads((ref / "noisy_scores.json").read_text())
    assert cache["metrics"] == sorted(WAVE)
    row = Metric("peak", "Peak", 2, "waveform", _peak_db, "wilcoxon", True, "dB")
    monkeypatch.setattr(registry, "METRICS", registry.METRICS + [row])
    loads = _count_loads(monkeypatch)

    new = make_hyp(ref, tmp_path / "new", tasks=("se",), enh_gain=0.6, seed=2)
    out = score(ref, new, "--nj", "1")
    _, rows = _tsv(out / "per_utt.tsv")
    for u in UTTS:
        clean = _wav(ref / "wav" / f"{u}_clean.wav")
        noisy = _wav(ref / "wav" / f"{u}_noisy.wav")
        enh = _wav(new / "wavs" / "se" / f"{u}.wav")
        assert float(rows[u]["se_peak_noisy"]) == pytest.approx(
            _peak_db(clean, noisy, FS), abs=1e-5
        )
        assert float(rows[u]["se_peak"]) == pytest.approx(
            _peak_db(clean, enh, FS), abs=1e-5
        )
        assert rows[u]["se_pesq_noisy"] == f"{cache['scores'][u]['pesq']:.6f}"
    se = _summary(out)["tasks"]["se"]
    assert se["noisy_scores"]["peak"] == pytest.approx(
        np.mean([float(rows[u]["se_peak_noisy"]) for u in UTTS]), abs=1e-5
    )
    assert loads.count("noisy") == len(UTTS)  # read once more, for 'peak'
    cache = json.loads((ref / "noisy_scores.json").read_text())
    assert cache["metrics"] == sorted(WAVE + ["peak"])
    # The system scored before the metric existed: out of date, rescored with it,
    # the noisy input's scores now all from the cache.
    loads.clear()
    summary = _summary(score(ref, old, "--nj", "1"))
    assert "peak" in summary["tasks"]["se"]["noisy_scores"]
    assert loads.count("noisy") == 0 and loads.count("enhanced") == len(UTTS)


def test_metrics_subset(ref_dir, tmp_path, caplog):
    ref = fresh_ref(ref_dir, tmp_path / "ref")
    hyp = make_hyp(ref, tmp_path / "h")
    out = score(ref, hyp, "--metrics", "ssnr", "f1_macro", "--nj", "1")
    summary = _summary(out)
    tasks = summary["tasks"]
    assert list(tasks["ser"]["scores"]) == ["f1_macro"]
    assert list(tasks["se"]["scores"]) == list(tasks["se"]["noisy_scores"]) == ["ssnr"]
    assert tasks["attr"]["scores"] == {}  # no vector metric asked for
    assert summary["options"] == {"metrics": ["f1_macro", "ssnr"], "submission": None}
    header, _ = _tsv(out / "per_utt.tsv")
    assert [c for c in header if c.startswith("se_")] == ["se_ssnr", "se_ssnr_noisy"]
    assert "attr_ref_arousal" not in header
    assert json.loads((ref / "noisy_scores.json").read_text())["metrics"] == ["ssnr"]
    # The same subset in another order: up to date. All metrics: scored again.
    with caplog.at_level(logging.INFO):
        score(ref, hyp, "--metrics", "f1_macro", "ssnr")
    assert "up to date" in caplog.text
    tasks = _summary(score(ref, hyp, "--nj", "1"))["tasks"]
    assert (
        list(tasks["se"]["noisy_scores"]) == WAVE
        and "ccc_mean" in tasks["attr"]["scores"]
    )
    assert json.loads((ref / "noisy_scores.json").read_text())["metrics"] == sorted(
        WAVE
    )
    with pytest.raises(SystemExit, match=r"--metrics: \['f1'\] are not metrics"):
        score(ref, hyp, "--metrics", "f1")


def test_task_without_references_is_skipped(ref_dir, tmp_path, caplog):
    """An unlabelled set (here: no attributes) scores the other tasks; once the
    references appear, the set is scored again."""
    ref = fresh_ref(ref_dir, tmp_path / "ref", drop=("emotion_attr",))
    hyp = make_hyp(ref, tmp_path / "h")
    with caplog.at_level(logging.WARNING):
        out = score(ref, hyp)
    assert "task 'attr' not scored" in caplog.text
    assert str(ref / "emotion_attr") in caplog.text
    tasks = _summary(out)["tasks"]
    assert "scores" not in tasks["attr"] and "emotion_attr" in tasks["attr"]["unscored"]
    assert "f1_macro" in tasks["ser"]["scores"] and "ssnr" in tasks["se"]["scores"]
    header, _ = _tsv(out / "per_utt.tsv")
    assert "ser_hyp" in header and not [c for c in header if c.startswith("attr")]
    shutil.copy(ref_dir / "emotion_attr", ref / "emotion_attr")
    tasks = _summary(score(ref, hyp))["tasks"]
    assert "ccc_mean" in tasks["attr"]["scores"]


def test_a_set_without_labels_gets_challenge_submission_files(ref_dir, tmp_path):
    """MSP-Podcast's Test3 format (the organisers' baseline): FileName,EmoClass and
    FileName,EmoAct,EmoVal,EmoDom on the 1-7 scale, sorted by file name."""
    ref = fresh_ref(ref_dir, tmp_path / "ref", drop=("emotion", "emotion_attr"))
    hyp = make_hyp(ref, tmp_path / "h")
    (hyp / "emotion_attr").write_text(
        "".join(f"{u} 0.5 4.0 9.0\n" for u in UTTS)  # outside 1-7: clipped
    )
    out = score(ref, hyp, "--submission", "msp_podcast")
    rows = (out / "submission_ser.csv").read_text().splitlines()
    assert rows[0] == "FileName,EmoClass" and len(rows) == len(UTTS) + 1
    names = [r.split(",")[0] for r in rows[1:]]
    assert names == sorted(f"{u}.wav" for u in UTTS)
    emotion = dict(line.split() for line in (hyp / "emotion").read_text().splitlines())
    assert all(r.split(",")[1] == emotion[r.split(",")[0][:-4]] for r in rows[1:])
    attrs = (out / "submission_attr.csv").read_text().splitlines()
    assert attrs[0] == "FileName,EmoAct,EmoVal,EmoDom"
    assert attrs[1].split(",")[1:] == ["1.0000", "4.0000", "7.0000"]
    assert not (out / "submission_se.csv").exists()  # enhancement is scored
    tasks = _summary(out)["tasks"]
    assert tasks["ser"]["submission"] == "submission_ser.csv"
    # Without the option: no submission; the option is part of the score's state.
    (out / "submission_ser.csv").unlink()
    score(ref, hyp, "--submission", "msp_podcast")
    assert (out / "submission_ser.csv").is_file()


def test_several_sets_in_one_call(ref_dir, tmp_path, capsys):
    hyps = [
        make_hyp(ref_dir, tmp_path / n, wrong=w, tasks=("ser", "attr"))
        for n, w in (("a", ()), ("b", (0, 1)))
    ]
    cmd = []
    for hyp in hyps:
        cmd += ["--ref_dir", str(ref_dir), "--hyp_dir", str(hyp), "--out_dir",
                str(hyp / "score")]  # fmt: skip
    merit_score.main(cmd)
    f1 = [_summary(h / "score")["tasks"]["ser"]["scores"]["f1_macro"] for h in hyps]
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


def _decode_sets(hyp: Path, exp: Path, names) -> dict:
    """Copies of a scored decode dir as ``exp/decode/<name>``, the i-th with
    F1-macro 0.1 * (i + 1); returns name -> that F1."""
    f1 = {}
    for i, name in enumerate(names):
        shutil.copytree(hyp, exp / "decode" / name)
        path = exp / "decode" / name / "score" / "summary.json"
        summary = json.loads(path.read_text())
        summary["tasks"]["ser"]["scores"]["f1_macro"] = f1[name] = 0.1 * (i + 1)
        path.write_text(json.dumps(summary))
    return f1


def test_results_md(scored, tmp_path, capsys):
    hyp, _ = scored
    exp = tmp_path / "exp" / "sparse"
    names = ["test1_seen_snr-5", "test1_seen_snr10", "test1_seen_snr0",
             "test1_unseen_snr5", "dev_extra"]  # fmt: skip
    f1 = _decode_sets(hyp, exp, names)
    note = tmp_path / "note.md"
    note.write_text("A miniature: it cannot show accuracy.\n")
    merit_score.main(["--results", str(exp), "--results_note", str(note)])
    printed = capsys.readouterr().out
    text = (exp / "RESULTS.md").read_text()
    assert "# RESULTS: sparse" in text and "- date: `" in text
    assert "## About these results\n\nA miniature: it cannot show" in text
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
    assert parse_set_name("test2_unseen_snr-2.5") == ("test2", "unseen", -2.5)


def test_results_md_groups_reverberant_sets_by_rooms(scored, tmp_path):
    """``<test>_rir<rooms>_<noise>_snr<snr>``: a table per rooms after the dry
    ones, and a dry vs reverberant table at the reverberant SNRs."""
    hyp, _ = scored
    exp = tmp_path / "exp" / "sparse"
    names = ["test1_seen_snr0", "test1_seen_snr5", "test1_rirunseen_seen_snr5",
             "test1_rirseen_seen_snr5", "test1_rirseen_seen_snr0"]  # fmt: skip
    f1 = _decode_sets(hyp, exp, names)
    merit_score.main(["--results", str(exp)])
    text = (exp / "RESULTS.md").read_text()
    tables = _parse_tables(text)
    titles = [t for t in tables if not t.startswith(("SE task", "SER task"))]
    assert titles == [
        "test1, seen noise",
        "test1, reverberant (seen rooms), seen noise",
        "test1, reverberant (unseen rooms), seen noise",
        "test1, seen noise: dry vs reverberant",
    ]
    assert [r["SNR (dB)"] for r in tables[titles[1]]] == ["0", "5"]
    both = tables["test1, seen noise: dry vs reverberant"]
    assert [(r["rooms"], r["SNR (dB)"]) for r in both] == [
        ("dry", "0"), ("seen rooms", "0"),
        ("dry", "5"), ("seen rooms", "5"), ("unseen rooms", "5"),
    ]  # fmt: skip
    assert float(both[4]["F1-macro"]) == pytest.approx(f1["test1_rirunseen_seen_snr5"])
    assert "Reverberant sets (`<test>_rir<rooms>_...`)" in text
    assert "SE task, test1, reverberant (unseen rooms), seen noise" in tables
    assert split_rooms("test1_rirseen") == ("test1", "seen")
    assert split_rooms("test1") == ("test1", None)


def test_results_md_has_every_metric_of_every_task(scored, tmp_path):
    """Three tasks (se + ser + attr): a column per registered metric of each,
    waveform ones for the enhanced output and the noisy input."""
    hyp, out = scored
    exp = tmp_path / "three"
    shutil.copytree(hyp, exp / "decode" / "test1_seen_snr0")
    merit_score.main(["--results", str(exp)])
    text = (exp / "RESULTS.md").read_text()
    row = _parse_tables(text)["test1, seen noise"][0]
    tasks = _summary(out)["tasks"]
    want = {"SNR (dB)": "0", "utts": "6"}
    for m in registry.METRICS:
        if not m.default:  # not scored without a selection naming it: no column
            continue
        if m.kind == "label":
            want[m.header] = f"{tasks['ser']['scores'][m.name]:.{m.digits}f}"
        elif m.kind == "vector":
            want[m.header] = f"{tasks['attr']['scores'][m.name]:.{m.digits}f}"
        else:
            want[f"{m.header} enh"] = f"{tasks['se']['scores'][m.name]:.{m.digits}f}"
            noisy = tasks["se"]["noisy_scores"][m.name]
            want[f"{m.header} noisy"] = f"{noisy:.{m.digits}f}"
    assert row == want
    assert {"F1-macro", "CCC mean", "SSNR enh"} <= set(row)
    assert "`attr` (emotion_attr): CCC mean" in text
    assert "(arousal, valence, dominance)" in text and "classes A, S, H, N" in text


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
    # A summary of the format before tasks (top-level "ser" and "se"): an error,
    # not a table without its numbers.
    old = tmp_path / "decode" / SET / "score" / "summary.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"set": SET, "num_utts": 6, "ser": {"f1_macro": 0.5}}))
    with pytest.raises(SystemExit, match=rf"{SET}/score/summary.json: no 'tasks'"):
        merit_score.main(["--results", str(tmp_path)])


@pytest.fixture(scope="module")
def two_systems(ref_dir, scored, tmp_path_factory):
    """System 'good' (the scored fixture) and 'base' (more label errors, enhanced
    output much noisier) on test1_seen_snr-5."""
    hyp, _ = scored
    root = tmp_path_factory.mktemp("systems")
    shutil.copytree(hyp, root / "good" / "decode" / SET)
    base_hyp = make_hyp(
        ref_dir, root / "base" / "decode" / SET, wrong=(0, 1, 3), enh_gain=0.9, seed=1
    )
    score(ref_dir, base_hyp)
    return root


def _score_dir(root, name):
    return root / name / "decode" / SET / "score"


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
    # The headline metrics of every task.
    assert list(rows[0]) == ["system", "SSNR (dB)", "PESQ", "STOI", "F1-macro",
                             "CCC mean"]  # fmt: skip
    summ = {n: _summary(_score_dir(root, n))["tasks"] for n in ("good", "base")}
    per_utt = {n: _tsv(_score_dir(root, n) / "per_utt.tsv")[1] for n in summ}

    f_good = summ["good"]["ser"]["scores"]["f1_macro"]
    f_base = summ["base"]["ser"]["scores"]["f1_macro"]
    test = paired_randomization_test(
        [per_utt["good"][u]["ser_ref"] for u in UTTS],
        [per_utt["good"][u]["ser_hyp"] for u in UTTS],
        [per_utt["base"][u]["ser_hyp"] for u in UTTS],
        CLASSES,
        rounds=500,
    )
    rel = (f_good - f_base) / abs(f_base) * 100
    cell = rows[0]["F1-macro"]
    assert cell.startswith(f"{f_good:.4f} ({rel:+.1f}%")
    assert f"p={test.p_value:.3f}" in cell and "dB" not in cell
    assert ("*" in cell) == (test.p_value < 0.05)
    assert rows[1]["F1-macro"] == f"{f_base:.4f}"
    assert rows[0]["CCC mean"].endswith("p=n/a)")

    wil = paired_wilcoxon(
        [float(per_utt["good"][u]["se_ssnr"]) for u in UTTS],
        [float(per_utt["base"][u]["se_ssnr"]) for u in UTTS],
    )
    s_good = summ["good"]["se"]["scores"]["ssnr"]
    s_base = summ["base"]["se"]["scores"]["ssnr"]
    cell = rows[0]["SSNR (dB)"]
    rel = (s_good - s_base) / abs(s_base) * 100
    assert cell.startswith(f"{s_good:.2f} ({rel:+.1f}%* ({s_good - s_base:+.2f} dB)")
    assert wil.p_value < 0.05 and f"p={wil.p_value:.3f}" in cell  # 6/6 better: 0.031
    data = json.loads(out.with_suffix(".json").read_text())
    vs = data["sets"][SET]["good"]["se_ssnr"]["vs"]["base"]
    assert vs["p_value"] == pytest.approx(wil.p_value) and vs["significant"]
    assert vs["difference"] == pytest.approx(s_good - s_base)
    assert "good" in capsys.readouterr().out


def test_compare_flags_a_base_near_0_db(two_systems, tmp_path):
    """dB metrics: the absolute difference beside the relative change, and '†'
    when the reference is within ±1 dB of 0 dB, where the percentage explodes."""
    root = two_systems
    s_good = _summary(_score_dir(root, "good"))["tasks"]["se"]["scores"]["ssnr"]
    cells = {}
    for base in (0.4, -1.0, -1.5):
        system = tmp_path / f"base{base}"
        shutil.copytree(root / "base", system)
        path = _score_dir(tmp_path, f"base{base}") / "summary.json"
        summary = json.loads(path.read_text())
        summary["tasks"]["se"]["scores"]["ssnr"] = base
        path.write_text(json.dumps(summary))
        out = tmp_path / f"compare{base}.md"
        merit_compare.main(
            ["--systems", f"good={root / 'good'}", f"base={system}",
             "--reference", "base", "--out", str(out), "--rounds", "100"]
        )  # fmt: skip
        row = _parse_tables(out.read_text())["test1, seen noise, -5 dB"][0]
        cells[base] = row["SSNR (dB)"]
        rel = (s_good - base) / abs(base) * 100
        assert cells[base].startswith(
            f"{s_good:.2f} ({rel:+.1f}%* ({s_good - base:+.2f} dB)"
        )
        assert "dB" not in row["PESQ"] and "†" not in row["PESQ"]
        vs = json.loads(out.with_suffix(".json").read_text())["sets"][SET]["good"]
        assert vs["se_ssnr"]["vs"]["base"]["small_base"] == (abs(base) <= 1)
    assert "dB)†" in cells[0.4] and "dB)†" in cells[-1.0]
    assert "†" not in cells[-1.5]
    assert "±1 dB" in out.read_text()  # the legend


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
    tsv = other / "decode" / SET / "score" / "per_utt.tsv"
    tsv.write_text("\n".join(tsv.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(SystemExit, match=f"set '{SET}'.*different utterances"):
        merit_compare.main(["--systems", f"good={root / 'good'}", f"other={other}",
                            "--reference", "other", "--out", str(out)])  # fmt: skip
