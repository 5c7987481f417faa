"""MeritTask: configs declare tasks, build_model is the one construction path
(recording every default), and every bad input is one clear error."""

import io
import shutil
import sys

import numpy as np
import pytest
import soundfile
import torch
import yaml
from merit_testing import (
    PAPER_CONFIGS,
    SPARSE_TINY,
    THREE_TASK_TINY,
    TINY_CONFIGS,
    data_args,
)

from espnet2_merit.bin.merit_train import main as train_main
from espnet2_merit.errors import MeritInputError
from espnet2_merit.tasks.merit import MeritTask

ALL_NAMES = ("speech", "speech_ref1", "emotion", "emotion_attr")
PIPELINE = dict(
    crop="first", crop_valid=True, reshuffle_batches=True, grad_clip=float("inf")
)


@pytest.mark.parametrize("config", PAPER_CONFIGS + TINY_CONFIGS, ids=lambda p: p.name)
def test_print_config_spells_out_every_task_option(config, monkeypatch):
    # ESPnet's --print_config (AbsTask.print_config) reads sys.argv to find the
    # chosen classes and their defaults.
    monkeypatch.setattr(sys, "argv", ["merit_train", "--config", str(config)])
    buffer = io.StringIO()
    MeritTask.print_config(file=buffer)
    printed = yaml.safe_load(buffer.getvalue())
    given = yaml.safe_load(config.read_text())
    assert printed["fusion"] == given["fusion"]
    for key, value in given.get("fusion_conf", {}).items():
        assert printed["fusion_conf"][key] == value
    assert list(printed["tasks"]) == list(given["tasks"])
    # The authors' release's data pipeline, spelled out in every config.
    for key, value in PIPELINE.items():
        assert given[key] == printed[key] == value, key
    for name, task in given["tasks"].items():
        out = printed["tasks"][name]
        assert out["head"] == task["head"] and "weight" in out
        assert "dropout" in out["head_conf"] and "target" in out["head_conf"]


@pytest.mark.parametrize("config", TINY_CONFIGS, ids=lambda p: p.name)
def test_build_records_every_default(config, make_args):
    args = make_args(config, names=ALL_NAMES)
    model = MeritTask.build_model(args)
    given = yaml.safe_load(config.read_text())
    assert list(model.heads) == list(given["tasks"])
    for name, task in args.tasks.items():
        assert set(task) == {"head", "head_conf", "loss", "loss_conf", "weight"}
        head = model.heads[name]
        assert task["head_conf"]["target"] == head.target.name
        # "balanced" was replaced by the numbers, so config.yaml carries them.
        conf = given["tasks"][name].get("loss_conf") or {}
        if conf.get("class_weights") == "balanced":
            assert task["loss_conf"]["class_weights"] == [1.0, 1.0, 1.0, 1.0]
    assert "hidden_size" in args.fusion_conf or given["fusion"] in (
        "weighted_sum",
        "last_layer",
    )
    assert "fs" not in args.frontend_conf
    assert "exact_padding" in args.frontend_conf or given["frontend"] == "fbank"
    if "text_frontend" in given:  # every option of the text frontend recorded
        assert {"local_files_only", "max_tokens"} <= set(args.text_frontend_conf)
    assert "aux_loss_weights" in args.model_conf
    # Rebuilding from the recorded arguments alone gives the same architecture.
    again = MeritTask.build_model(args)
    assert again.state_dict().keys() == model.state_dict().keys()


def test_three_tasks(make_args):
    model = MeritTask.build_model(make_args(THREE_TASK_TINY, names=ALL_NAMES))
    assert {n: h.target.name for n, h in model.heads.items()} == {
        "se": "speech_ref1",
        "ser": "emotion",
        "attr": "emotion_attr",
    }
    assert model.heads["attr"].num_outputs == 3
    assert set(model.fusion.routers) == {"se", "ser", "attr"}


def test_one_line_overrides_of_tasks(make_args):
    args = make_args(
        SPARSE_TINY,
        "--tasks", "ser.loss=focal",
        "--tasks", "ser.head_conf.dropout=0.3",
        "--tasks", "se.weight=0.5",
    )  # fmt: skip
    model = MeritTask.build_model(args)
    assert type(model.heads["ser"].loss_fn).__name__ == "FocalLoss"
    assert args.tasks["ser"]["head_conf"]["dropout"] == 0.3
    assert model.task_weights == {"se": 0.5, "ser": 1.0}
    ser_only = MeritTask.build_model(make_args(SPARSE_TINY, "--tasks", "se=null"))
    assert list(ser_only.heads) == ["ser"] and set(ser_only.fusion.routers) == {"ser"}


def test_balanced_class_weights(make_args, data_dirs, tmp_path):
    train, valid = data_dirs
    skewed = tmp_path / "train"
    shutil.copytree(train, skewed)
    lines = (train / "emotion").read_text().splitlines()
    # 20 utterances: relabel so the counts are A=11, S=3, H=3, N=3.
    relabeled = [
        f"{line.split()[0]} {'A' if i < 11 else 'SHN'[(i - 11) % 3]}"
        for i, line in enumerate(lines)
    ]
    (skewed / "emotion").write_text("\n".join(relabeled) + "\n")
    args = make_args(SPARSE_TINY, data=(skewed, valid))
    model = MeritTask.build_model(args)
    expected = 20 / (4 * np.array([11, 3, 3, 3]))
    recorded = args.tasks["ser"]["loss_conf"]["class_weights"]
    np.testing.assert_allclose(recorded, expected, rtol=1e-5)
    np.testing.assert_allclose(
        model.heads["ser"].loss_fn.class_weights.numpy(), expected, rtol=1e-5
    )


def test_frontend_learning_rate_scale(make_args):
    args = make_args(
        SPARSE_TINY, "--optim_conf", "lr=0.002", "--frontend_lr_scale", "0.25"
    )
    model = MeritTask.build_model(args)
    (optim,) = MeritTask.build_optimizers(args, model)
    rest, frontend = optim.param_groups
    assert rest["lr"] == pytest.approx(0.002)
    assert frontend["lr"] == pytest.approx(0.0005)
    n_frontend = sum(
        1 for n, _ in model.named_parameters() if n.startswith("frontend.")
    )
    assert len(frontend["params"]) == n_frontend > 0
    assert len(rest["params"]) + n_frontend == len(list(model.parameters()))


def test_fbank_frontend_is_a_yaml_edit(data_dirs, tmp_path):
    train, valid = data_dirs
    conf = yaml.safe_load(SPARSE_TINY.read_text())
    conf.update(frontend="fbank", frontend_conf={"n_mels": 40})
    config = tmp_path / "fbank.yaml"
    config.write_text(yaml.safe_dump(conf))
    args = MeritTask.get_parser().parse_args(
        [
            "--config", str(config),
            "--emotion_list", str(train / "emotion_list"),
            *data_args(train, valid),
        ]
    )  # fmt: skip
    model = MeritTask.build_model(args)
    assert model.frontend.num_layers() == 1 and model.heads["se"].repeat == 1
    wav = torch.randn(2, 16000)
    lengths = torch.tensor([16000, 11111])
    loss, stats, _ = model(
        wav,
        lengths,
        speech_ref1=wav,
        speech_ref1_lengths=lengths,
        emotion=torch.tensor([[0], [2]]),
    )
    loss.backward()
    assert torch.isfinite(loss) and "se_loss" in stats and "ser_loss" in stats


def test_pipeline_defaults_are_espnets_and_config_yaml_round_trips(train_cmd, tmp_path):
    defaults = MeritTask.get_parser().parse_args([])
    assert (defaults.crop, defaults.crop_valid, defaults.reshuffle_batches) == (
        "random", False, False,
    )  # fmt: skip
    cmd = train_cmd(SPARSE_TINY, "--ngpu", "0", "--dry_run", "true")
    train_main(cmd)
    written = tmp_path / "exp" / "config.yaml"
    assert "\ngrad_clip: .inf\n" in written.read_text()
    recorded = yaml.safe_load(written.read_text())
    assert {k: recorded[k] for k in PIPELINE} == PIPELINE


# ---- bad configs: each a clear error naming the field ---------------------------


@pytest.mark.parametrize(
    "override, message",
    [
        (["--tasks", "ser.head=transformer"], "tasks.ser.head: 'transformer' is not one of"),
        (["--tasks", "ser.loss=ccc"], "tasks.ser.loss: 'ccc' is a vector loss"),
        (["--tasks", "ser.heda=x"], "tasks.ser: unknown key 'heda'"),
        (["--tasks", "ser.head_conf.hiden_size=3"], "tasks.ser.head_conf: unknown option 'hiden_size'"),
        (["--tasks", "ser.head_conf.input_size=3"], "tasks.ser.head_conf.input_size: set by the task"),
        (["--tasks", "ser.weight=heavy"], "tasks.ser.weight: expected a number"),
        (["--tasks", "Bad-Name.head=blstm_mask"], "task names are lower-case"),
        (["--tasks", "se2.head=blstm_mask"], "tasks 'se' and 'se2' both predict 'speech_ref1'"),
        (["--model_conf", "aux_loss_weights.balanse_loss=0.1"], "'balanse_loss'] are not losses of fusion"),
        (["--model_conf", "se_weight=1.0"], "model_conf: unknown option 'se_weight'"),
        (["--model_conf", "head_domain=scaled"], "head_domain='scaled': use 'normalized' or 'raw'"),
        (["--fusion_conf", "num_expert=3"], "fusion_conf: unknown option 'num_expert'"),
        (["--tasks", "se=null", "--tasks", "ser=null"], "no task declared"),
    ],
)  # fmt: skip
def test_bad_config_is_a_clear_error_at_build(override, message, make_args):
    with pytest.raises(MeritInputError, match=message.replace("[", r"\[")):
        MeritTask.build_model(make_args(SPARSE_TINY, *override))


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"crop": "middle"}, "crop: 'middle' is not one of ['random', 'first']"),
        ({"grad_clip": 0.0}, "grad_clip: expected a positive norm, or .inf"),
        ({"grad_clip": -1.0}, "grad_clip: expected a positive norm, or .inf"),
        (
            {"iterator_type": "chunk"},
            "reshuffle_batches: true needs iterator_type: sequence",
        ),
    ],
)
def test_bad_pipeline_option_in_a_config(edit, message, train_cmd, tmp_path):
    conf = yaml.safe_load(SPARSE_TINY.read_text())
    conf.update(edit)
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(conf))
    assert message in _run(train_cmd(config, "--ngpu", "0"))


def test_unknown_fusion_in_a_config(make_args):
    args = make_args(SPARSE_TINY)
    args.fusion = "moe_of_doom"  # a config file is not checked by argparse's choices
    with pytest.raises(MeritInputError, match="fusion: 'moe_of_doom' is not one of"):
        MeritTask.build_model(args)


def test_a_label_task_other_than_emotion_needs_its_classes(make_args):
    args = make_args(SPARSE_TINY, "--tasks", "gender.head=attentive_pooling",
                     "--tasks", "gender.head_conf.target=gender")  # fmt: skip
    with pytest.raises(MeritInputError, match="tasks.gender.head_conf.classes"):
        MeritTask.build_model(args)
    args = make_args(
        SPARSE_TINY,
        "--tasks", "gender.head=attentive_pooling",
        "--tasks", "gender.head_conf={target: gender, classes: [Female, Male]}",
    )  # fmt: skip
    model = MeritTask.build_model(args)
    assert model.heads["gender"].target.classes == ["Female", "Male"]
    assert args.tasks["gender"]["head_conf"]["classes"] == ["Female", "Male"]


# ---- bad data: each a clear error naming the file and line ----------------------


def _run(cmd):
    with pytest.raises(SystemExit) as e:
        train_main(cmd)
    return str(e.value.code)


@pytest.fixture
def base_cmd(train_cmd):
    return lambda config=SPARSE_TINY, **kw: train_cmd(config, **kw)


def _copy(data_dirs, tmp_path):
    train, valid = data_dirs
    bad = tmp_path / "train"
    shutil.copytree(train, bad)
    return bad, valid


def _edit(path, index, new):
    lines = path.read_text().splitlines()
    lines[index] = new(lines[index])
    path.write_text("\n".join(lines) + "\n")


def test_label_not_in_emotion_list(base_cmd, data_dirs, tmp_path):
    bad, valid = _copy(data_dirs, tmp_path)
    _edit(bad / "emotion", 3, lambda line: line.split()[0] + " O")
    message = _run(base_cmd(data=(bad, valid)))
    assert f"{bad}/emotion:4" in message
    assert "emotion label 'O'" in message and "--emotion_list" in message


def test_tab_separated_label_file_is_accepted(base_cmd, data_dirs, tmp_path):
    """ESPnet's readers split on any whitespace; so must the data check."""
    bad, valid = _copy(data_dirs, tmp_path)
    text = (bad / "emotion").read_text().replace(" ", "\t")
    (bad / "emotion").write_text(text)
    train_main([*base_cmd(data=(bad, valid)), "--ngpu", "0", "--dry_run", "true"])
    from espnet2_merit.train.data_check import check_data

    args = MeritTask.get_parser().parse_args(base_cmd(data=(bad, valid)))
    args.emotion_list = ["A", "S", "H", "N"]
    check_data(args, MeritTask.needed_data(args))


def test_missing_clean_reference_with_se_on(base_cmd):
    message = _run(base_cmd(names=("speech", "emotion")))
    assert "task 'se'" in message and "speech_ref1" in message


def test_missing_emotion_with_a_classifier(base_cmd):
    message = _run(base_cmd(names=("speech", "speech_ref1")))
    assert "task 'ser'" in message and "'emotion'" in message


def test_utterance_missing_from_a_label_file(base_cmd, data_dirs, tmp_path):
    bad, valid = _copy(data_dirs, tmp_path)
    lines = (bad / "emotion").read_text().splitlines()
    (bad / "emotion").write_text("\n".join(lines[1:]) + "\n")
    message = _run(base_cmd(data=(bad, valid)))
    assert f"{bad}/emotion: no entry for utterance" in message


def test_label_for_an_utterance_without_audio(base_cmd, data_dirs, tmp_path):
    bad, valid = _copy(data_dirs, tmp_path)
    with open(bad / "emotion", "a") as f:
        f.write("ghost-utt A\n")
    message = _run(base_cmd(data=(bad, valid)))
    assert "'ghost-utt' is not in" in message and "wav.scp" in message


def test_duplicate_utterance_id(base_cmd, data_dirs, tmp_path):
    bad, valid = _copy(data_dirs, tmp_path)
    lines = (bad / "wav.scp").read_text().splitlines()
    (bad / "wav.scp").write_text("\n".join(lines + lines[:1]) + "\n")
    message = _run(base_cmd(data=(bad, valid)))
    assert f"{bad}/wav.scp:{len(lines) + 1}" in message and "repeated" in message


def test_noisy_and_clean_lengths_differ(base_cmd, data_dirs, tmp_path):
    bad, valid = _copy(data_dirs, tmp_path)
    short = tmp_path / "short.wav"
    soundfile.write(short, np.zeros(1000, dtype=np.float32), 16000)
    _edit(bad / "spk1.scp", 0, lambda line: f"{line.split()[0]} {short}")
    message = _run(base_cmd(data=(bad, valid)))
    assert "has 1000 samples, but its noisy speech" in message


def test_stereo_audio(base_cmd, data_dirs, tmp_path):
    bad, valid = _copy(data_dirs, tmp_path)
    stereo = tmp_path / "stereo.wav"
    soundfile.write(stereo, np.zeros((16000, 2), dtype=np.float32), 16000)
    _edit(bad / "wav.scp", 0, lambda line: f"{line.split()[0]} {stereo}")
    message = _run(base_cmd(data=(bad, valid)))
    assert f"{bad}/wav.scp:1" in message and "2 channels" in message


def test_duplicated_class_in_emotion_list(base_cmd, data_dirs, tmp_path):
    bad_list = tmp_path / "emotion_list"
    bad_list.write_text("A\nS\nH\nN\nA\n")
    cmd = base_cmd()
    cmd[cmd.index("--emotion_list") + 1] = str(bad_list)
    message = _run(cmd)
    assert f"{bad_list}:5" in message and "'A' repeated" in message


def test_wrong_sample_rate(base_cmd, data_dirs, tmp_path):
    bad, valid = _copy(data_dirs, tmp_path)
    wav8k = tmp_path / "8k.wav"
    soundfile.write(wav8k, np.zeros(8000, dtype=np.float32), 8000)
    _edit(bad / "wav.scp", 0, lambda line: f"{line.split()[0]} {wav8k}")
    message = _run(base_cmd(data=(bad, valid)))
    assert f"{bad}/wav.scp:1" in message and "8000 Hz" in message and "16000" in message


def test_missing_audio_file(base_cmd, data_dirs, tmp_path):
    bad, valid = _copy(data_dirs, tmp_path)
    _edit(bad / "spk1.scp", 1, lambda line: f"{line.split()[0]} /nonexistent/clean.wav")
    message = _run(base_cmd(data=(bad, valid)))
    assert f"{bad}/spk1.scp:2" in message and "/nonexistent/clean.wav" in message


def test_bad_attribute_line(base_cmd, data_dirs, tmp_path):
    bad, valid = _copy(data_dirs, tmp_path)
    _edit(bad / "emotion_attr", 2, lambda line: f"{line.split()[0]} 4.0 high")
    message = _run(base_cmd(THREE_TASK_TINY, names=ALL_NAMES, data=(bad, valid)))
    assert f"{bad}/emotion_attr:3" in message and "3 finite numbers" in message


def test_config_yaml_records_files_with_absolute_paths(
    train_cmd, tiny_wavlm, tmp_path, monkeypatch
):
    """An experiment is rebuilt from its config.yaml in any directory."""
    (tmp_path / "ssl").mkdir()
    shutil.copy(tiny_wavlm, tmp_path / "ssl" / "tiny.pt")
    monkeypatch.chdir(tmp_path)
    cmd = train_cmd(SPARSE_TINY, "--ngpu", "0", "--dry_run", "true")
    cmd[cmd.index("--frontend_conf") + 1] = "path_or_url=ssl/tiny.pt"
    train_main(cmd)
    conf = yaml.safe_load((tmp_path / "exp" / "config.yaml").read_text())
    assert conf["frontend_conf"]["path_or_url"] == str(tmp_path / "ssl" / "tiny.pt")
    monkeypatch.chdir("/")
    model, _ = MeritTask.build_model_from_file(
        tmp_path / "exp" / "config.yaml", allow_random_init=True
    )
    assert list(model.heads) == ["se", "ser"]


def test_the_seed_sets_the_initial_weights(make_args):
    """s3prl re-seeds torch with 0 while building the upstream; the fusion and
    heads, built after it, must still depend on --seed."""
    from espnet2.torch_utils.set_all_random_seed import set_all_random_seed

    def initial(seed):
        set_all_random_seed(seed)
        model = MeritTask.build_model(make_args(SPARSE_TINY))
        return {
            k: v for k, v in model.state_dict().items() if not k.startswith("frontend")
        }

    a, b, c = initial(7), initial(7), initial(8)
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)
    trained = [k for k in a if a[k].is_floating_point() and a[k].std() > 0]
    assert trained and all(not torch.equal(a[k], c[k]) for k in trained)


def test_deterministic_turns_on_deterministic_algorithms(train_cmd):
    assert not torch.are_deterministic_algorithms_enabled()
    cmd = train_cmd(SPARSE_TINY, "--ngpu", "0", "--dry_run", "true")
    try:
        train_main([*cmd, "--deterministic", "true"])
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def _relabel(src, dst, unlabelled=()):
    """A copy of data dir ``src`` with "-" for ``unlabelled`` utterances and an
    emotion_votes file (3 votes for the label, 1 for N or O)."""
    shutil.copytree(src, dst)
    labels = dict(line.split() for line in (src / "emotion").read_text().splitlines())
    with open(dst / "emotion", "w") as emo, open(dst / "emotion_votes", "w") as v:
        for i, (utt, label) in enumerate(labels.items()):
            emo.write(f"{utt} {'-' if utt in unlabelled else label}\n")
            other = "O" if i % 2 else "N"
            v.write(
                f"{utt} -\n" if utt in unlabelled else f"{utt} {label}:3 {other}:1\n"
            )
    return sorted(labels)


def test_semi_supervised_soft_label_training(train_cmd, data_dirs, tmp_path):
    """An unlabelled pool ("-") and annotators' votes train through ESPnet's
    trainer: the data check accepts both, balanced class weights count the
    labelled utterances only, and the emotion loss of the epoch is finite."""
    uids = sorted(
        line.split()[0] for line in (data_dirs[0] / "emotion").read_text().splitlines()
    )
    pool = set(uids[::5])
    train = tmp_path / "train"
    _relabel(data_dirs[0], train, pool)
    valid = tmp_path / "valid"
    _relabel(data_dirs[1], valid)
    names = ("speech", "speech_ref1", "emotion", "emotion_votes")
    cmd = train_cmd(
        SPARSE_TINY,
        "--tasks", "ser.head_conf.soft_labels=emotion_votes",
        "--max_epoch", "1", "--ngpu", "0",
        names=names, data=(train, valid),
    )  # fmt: skip
    train_main(cmd)
    exp = tmp_path / "exp"
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["tasks"]["ser"]["head_conf"]["soft_labels"] == "emotion_votes"
    labels = [line.split()[1] for line in (train / "emotion").read_text().splitlines()]
    counts = np.array([labels.count(c) for c in "ASHN"])
    expected = counts.sum() / (4 * counts)  # of the labelled 16, not all 20
    weights = config["tasks"]["ser"]["loss_conf"]["class_weights"]
    np.testing.assert_allclose(weights, expected, rtol=1e-5)
    stats = torch.load(exp / "checkpoint.pth", weights_only=False)["reporter"]
    for split in ("train", "valid"):
        assert np.isfinite(stats["stats"][1][split]["ser_loss"])


def test_soft_labels_without_the_votes_file_is_an_error(train_cmd):
    cmd = train_cmd(SPARSE_TINY, "--tasks", "ser.head_conf.soft_labels=emotion_votes")
    message = _run(cmd)
    assert "task 'ser'" in message and "'emotion_votes'" in message
