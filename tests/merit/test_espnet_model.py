"""ESPnetMeritModel on every tiny config: the loss is the weighted sum of the
tasks' and the fusion's losses, gradients reach every trainable part, batched
outputs equal one-by-one outputs, whole-set statistics are per task."""

import pytest
import soundfile
import torch
import yaml
from merit_testing import SPARSE_TINY, THREE_TASK_TINY, TINY_CONFIGS

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.heads.targets import AUG_LABEL, AUG_SOURCE
from espnet2_merit.scoring import selection
from espnet2_merit.tasks.merit import MeritTask
from espnet2_merit.utils.datadir import read_kaldi

ATTR = ["emotion_attr"]


def _batch(
    data_dir, uids, names=("speech_ref1", "emotion", "emotion_attr"), tokenizer=None
):
    """Padded batch of generated utterances, as ESPnet's collate_fn builds it
    (with ``tokenizer``, the transcripts' token ids padded with -1)."""
    pad = torch.nn.utils.rnn.pad_sequence
    wav = read_kaldi(data_dir / "wav.scp")
    wavs = [torch.tensor(soundfile.read(wav[u], dtype="float32")[0]) for u in uids]
    lengths = torch.tensor([len(w) for w in wavs])
    batch = dict(speech=pad(wavs, batch_first=True), speech_lengths=lengths)
    if "speech_ref1" in names:
        ref = read_kaldi(data_dir / "spk1.scp")
        refs = [torch.tensor(soundfile.read(ref[u], dtype="float32")[0]) for u in uids]
        batch.update(
            speech_ref1=pad(refs, batch_first=True), speech_ref1_lengths=lengths
        )
    if "emotion" in names:
        lab = read_kaldi(data_dir / "emotion")
        batch["emotion"] = torch.tensor([["ASHN".index(lab[u])] for u in uids])
        batch["emotion_lengths"] = torch.ones(len(uids), dtype=torch.long)
    if "emotion_attr" in names:
        attr = read_kaldi(data_dir / "emotion_attr")
        values = [[float(v) for v in attr[u].split()] for u in uids]
        batch["emotion_attr"] = torch.tensor(values)
        batch["emotion_attr_lengths"] = torch.full((len(uids),), 3)
    if "emotion_votes" in names:
        votes = read_kaldi(data_dir / "emotion_votes")
        dist = []
        for u in uids:
            counts = dict(v.split(":") for v in votes[u].split())
            dist.append([float(counts.get(c, 0)) for c in "ASHN"])
        dist = torch.tensor(dist)
        batch["emotion_votes"] = dist / dist.sum(-1, keepdim=True)
        batch["emotion_votes_lengths"] = torch.full((len(uids),), 4)
    if tokenizer is not None:
        text = read_kaldi(data_dir / "text")
        ids = [torch.as_tensor(tokenizer(text[u])) for u in uids]
        batch["text"] = pad(ids, batch_first=True, padding_value=-1)
        batch["text_lengths"] = torch.tensor([len(i) for i in ids])
    if AUG_LABEL in names:  # what --augmentation makes: a type, the input
        batch[AUG_LABEL] = torch.arange(len(uids))[:, None] % 6
        batch[f"{AUG_LABEL}_lengths"] = torch.ones(len(uids), dtype=torch.long)
        batch[AUG_SOURCE] = batch["speech"].clone()
        batch[f"{AUG_SOURCE}_lengths"] = lengths
    return batch


def _uids(data_dir):
    return sorted(read_kaldi(data_dir / "emotion"))


def _names(config):
    tasks = yaml.safe_load(config.read_text())["tasks"]
    heads = {t["head"] for t in tasks.values()}
    names = ["speech", "speech_ref1", "emotion"]
    if "soft_labels" in config.read_text():
        names.append("emotion_votes")
    return names + (ATTR if "attribute_regressor" in heads else []), tasks


def _generated(config):
    """The data a config's --augmentation makes (none without it)."""
    return (AUG_LABEL, AUG_SOURCE) if "augmentation" in config.read_text() else ()


@pytest.mark.parametrize("config", TINY_CONFIGS, ids=lambda p: p.stem)
def test_loss_is_the_weighted_sum_and_gradients_flow(config, make_args, data_dirs):
    names, tasks = _names(config)
    torch.manual_seed(0)
    model = MeritTask.build_model(make_args(config, names=names))
    uids = _uids(data_dirs[0])[:3]
    tokenizer = getattr(model.text_frontend, "tokenizer", None)
    loss, stats, weight = model(
        **_batch(
            data_dirs[0], uids, ("speech_ref1", *names, *_generated(config)), tokenizer
        )
    )
    loss.backward()
    assert torch.isfinite(loss) and int(weight) == 3
    expected = sum(
        tasks[t].get("weight", 1.0) * float(stats[f"{t}_loss"]) for t in tasks
    )
    for name, per_task in model.aux_loss_weights.items():
        for task, w in per_task.items():
            expected += w * float(stats[f"{task}_{name}"])
    assert float(stats["loss"]) == pytest.approx(expected, rel=1e-5)
    for task in getattr(model.fusion, "routers", {}):
        usage = torch.cat([stats[f"{task}_expert{i}"] for i in range(3)])
        assert usage.sum() == pytest.approx(1.0, abs=1e-5)
        dense = "dense" in config.name
        assert float(stats[f"{task}_mean_experts"]) == (3.0 if dense else 1.0)
    if "ser" in tasks:
        assert 0.0 <= float(stats["ser_acc"]) <= 1.0
    # Every trainable parameter gets a gradient (DDP waits for each one); what
    # never reaches the features (the CNN under no_grad, mask_emb) is frozen.
    for name, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    if "s3prl" in config.read_text():
        assert any("feature_extractor" in n for n in frozen)
        assert any("mask_emb" in n for n in frozen)
        assert not any("encoder.layers" in n for n in frozen)


def test_three_tasks_three_routers_whole_set_statistics(make_args, data_dirs):
    config = THREE_TASK_TINY
    model = MeritTask.build_model(make_args(config, names=_names(config)[0])).eval()
    assert list(model.heads) == ["se", "ser", "attr"]
    assert set(model.fusion.routers) == {"se", "ser", "attr"}
    with torch.no_grad():
        _, stats, _ = model(**_batch(data_dirs[0], _uids(data_dirs[0])[:4]))
    # The whole-set entropy replaces the per-batch one (the same reporter key).
    assert not [k for k in stats if k.endswith("_usage_entropy")]
    means = {k: float(v) for k, v in stats.items() if k.startswith(selection.PREFIX)}
    metrics = selection.set_metrics(means)
    routed = {"usage_entropy", "busiest_share", "speech_noise_tv", "speech_frames"}
    routed.add("mean_experts")  # top-1: exactly 1
    assert set(metrics) == {"ser_f1_macro", "attr_ccc"} | {
        f"{t}_{m}" for t in ("se", "ser", "attr") for m in routed
    }
    assert 0 <= metrics["ser_f1_macro"] <= 1 and -1 <= metrics["attr_ccc"] <= 1
    for t in ("se", "ser", "attr"):
        assert 0 <= metrics[f"{t}_usage_entropy"] <= 1
        assert 1 / 3 <= metrics[f"{t}_busiest_share"] <= 1
        assert metrics[f"{t}_mean_experts"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "config",
    [SPARSE_TINY] + [c for c in TINY_CONFIGS if "naive" in c.name],
    ids=lambda p: p.stem,
)
def test_batch_equals_one_by_one(config, make_args, data_dirs):
    torch.manual_seed(0)
    model = MeritTask.build_model(make_args(config)).eval()
    pair = [_uids(data_dirs[0])[i] for i in (0, 5)]  # different lengths
    batch = _batch(data_dirs[0], pair)
    with torch.no_grad():
        fused, flens, preds = model.inference(batch["speech"], batch["speech_lengths"])
        for b, uid in enumerate(pair):
            one = _batch(data_dirs[0], [uid])
            f1, l1, p1 = model.inference(one["speech"], one["speech_lengths"])
            assert int(l1[0]) == int(flens[b])
            torch.testing.assert_close(
                p1["ser"][0], preds["ser"][b], atol=1e-4, rtol=1e-4
            )
            n = int(one["speech_lengths"][0])
            torch.testing.assert_close(
                p1["se"].wav[0], preds["se"].wav[b, :n], atol=1e-4, rtol=1e-4
            )
            if "sparse" in config.name:
                assert torch.equal(
                    f1.routes["ser"][0][0, : int(l1[0])],
                    fused.routes["ser"][0][b, : int(l1[0])],
                )


def test_inference_of_some_tasks_runs_only_their_heads(make_args, data_dirs):
    config = SPARSE_TINY
    model = MeritTask.build_model(make_args(config)).eval()
    batch = _batch(data_dirs[0], _uids(data_dirs[0])[:2])
    with torch.no_grad():
        fused, _, preds = model.inference(
            batch["speech"], batch["speech_lengths"], tasks=["ser"]
        )
    assert set(preds) == {"ser"} and set(fused.features) == {"ser"}
    assert set(fused.routes) == {"se", "ser"}  # every task is still routed


def test_a_batch_without_a_target_is_an_error_naming_it(make_args, data_dirs):
    config = SPARSE_TINY
    model = MeritTask.build_model(make_args(config))
    batch = _batch(data_dirs[0], _uids(data_dirs[0])[:2], names=("emotion",))
    with pytest.raises(MeritInputError, match="no 'speech_ref1'"):
        model(**batch)


def test_collect_feats_gives_waveform_statistics_input(make_args):
    model = MeritTask.build_model(make_args(TINY_CONFIGS[-1]))
    wav = torch.randn(2, 100)
    feats = model.collect_feats(wav, torch.tensor([100, 60]))
    assert feats["feats"].shape == (2, 100, 1)
    assert feats["feats_lengths"].tolist() == [100, 60]


@pytest.mark.parametrize("domain", ["normalized", "raw"])
def test_head_domain_maps_input_reference_and_output_alike(
    domain, make_args, data_dirs
):
    """With per-utterance mean and variance normalisation, the normalised domain
    makes the SE loss blind to the input gain and the enhanced speech follow it;
    the raw domain (heads on the waveform as read) does neither."""
    args = make_args(
        SPARSE_TINY,
        "--normalize_conf", "norm_vars=true",
        "--model_conf", f"head_domain={domain}",
    )  # fmt: skip
    torch.manual_seed(0)
    model = MeritTask.build_model(args).eval()
    batch = _batch(data_dirs[0], _uids(data_dirs[0])[:2])
    loud = dict(batch, speech=4 * batch["speech"], speech_ref1=4 * batch["speech_ref1"])
    with torch.no_grad():
        _, quiet_stats, _ = model(**batch)
        _, loud_stats, _ = model(**loud)
        quiet_wav = model.inference(batch["speech"], batch["speech_lengths"])[2]["se"]
        loud_wav = model.inference(loud["speech"], loud["speech_lengths"])[2]["se"]
    # The fused features see the same normalised input either way.
    ser = [float(s["ser_loss"]) for s in (quiet_stats, loud_stats)]
    assert ser[0] == pytest.approx(ser[1], rel=1e-4)
    se = [float(s["se_loss"]) for s in (quiet_stats, loud_stats)]
    if domain == "normalized":
        assert se[0] == pytest.approx(se[1], rel=1e-4)
        torch.testing.assert_close(
            loud_wav.wav, 4 * quiet_wav.wav, atol=1e-4, rtol=1e-3
        )
    else:
        assert se[1] > 1.5 * se[0]
        assert not torch.allclose(loud_wav.wav, 4 * quiet_wav.wav, atol=1e-3)


def test_balance_weight_is_per_task_and_not_averaged(make_args, data_dirs, caplog):
    one = MeritTask.build_model(
        make_args(SPARSE_TINY, "--model_conf", "aux_loss_weights.balance_loss=0.02")
    )
    assert one.aux_loss_weights["balance_loss"] == {"se": 0.02, "ser": 0.02}
    args = make_args(
        SPARSE_TINY, "--model_conf", "aux_loss_weights.balance_loss={se: 0.0, ser: 0.5}"
    )
    torch.manual_seed(0)
    model = MeritTask.build_model(args)
    assert model.aux_loss_weights["balance_loss"] == {"se": 0.0, "ser": 0.5}
    loss, stats, _ = model(**_batch(data_dirs[0], _uids(data_dirs[0])[:2]))
    expected = float(stats["se_loss"]) + float(stats["ser_loss"])
    expected += 0.5 * float(stats["ser_balance_loss"])
    expected += sum(0.001 * float(stats[f"{t}_z_loss"]) for t in ("se", "ser"))
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    # A task dropped by an override (or misspelt) is left out, with a warning.
    dropped = make_args(SPARSE_TINY, "--tasks", "se=null")
    assert MeritTask.build_model(dropped).aux_loss_weights["balance_loss"] == {
        "ser": 0.05
    }
    assert "['se'] are not routed tasks" in caplog.text


def test_unlabelled_utterances_train_only_the_tasks_they_have(make_args, data_dirs):
    """Semi-supervised batches: the emotion and attribute losses (and whole-set
    metrics) of a batch with unlabelled utterances are those of its labelled
    subset alone; enhancement still trains on every utterance."""
    config = THREE_TASK_TINY
    torch.manual_seed(0)
    model = MeritTask.build_model(make_args(config, names=_names(config)[0])).eval()
    uids = _uids(data_dirs[0])[:4]
    mixed = _batch(data_dirs[0], uids)
    mixed["emotion"][[1, 3]] = -1  # "-" in the emotion file
    mixed["emotion_attr"][2] = float("nan")  # "-" in emotion_attr
    with torch.no_grad():
        _, stats, _ = model(**mixed)
        _, whole, _ = model(**_batch(data_dirs[0], uids))
        _, ser_only, _ = model(**_batch(data_dirs[0], [uids[0], uids[2]]))
        _, attr_only, _ = model(**_batch(data_dirs[0], [uids[0], uids[1], uids[3]]))

    def close(a, b):
        assert float(a) == pytest.approx(float(b), rel=1e-4, abs=1e-5)

    close(stats["se_loss"], whole["se_loss"])
    close(stats["ser_loss"], ser_only["ser_loss"])
    close(stats["attr_loss"], attr_only["attr_loss"])
    metrics = {
        name: selection.set_metrics(
            {k: float(v) for k, v in s.items() if k.startswith(selection.PREFIX)}
        )
        for name, s in (("mixed", stats), ("ser", ser_only), ("attr", attr_only))
    }
    close(metrics["mixed"]["ser_f1_macro"], metrics["ser"]["ser_f1_macro"])
    close(metrics["mixed"]["attr_ccc"], metrics["attr"]["attr_ccc"])
    expected = sum(
        model.task_weights[t] * float(stats[f"{t}_loss"]) for t in model.heads
    ) + sum(
        w * float(stats[f"{t}_{n}"])
        for n, per_task in model.aux_loss_weights.items()
        for t, w in per_task.items()
    )
    close(stats["loss"], expected)


def test_a_batch_without_any_label_skips_the_task(make_args, data_dirs):
    config = SPARSE_TINY
    torch.manual_seed(0)
    model = MeritTask.build_model(make_args(config))
    batch = _batch(data_dirs[0], _uids(data_dirs[0])[:2])
    batch["emotion"][:] = -1
    loss, stats, _ = model(**batch)
    assert torch.isnan(stats["ser_loss"]) and torch.isnan(stats["ser_acc"])
    assert torch.isfinite(loss)
    loss.backward()
    head = model.heads["ser"]
    assert all(p.grad is None or not p.grad.any() for p in head.parameters())
