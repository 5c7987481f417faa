import io
import shutil
import sys

import numpy as np
import pytest
import soundfile
import torch
import yaml
from merit_testing import PAPER_CONFIGS, TINY_CONFIGS, data_args

from espnet2_merit.bin.merit_train import main as train_main
from espnet2_merit.errors import MeritInputError
from espnet2_merit.tasks.merit import MeritTask


@pytest.mark.parametrize("config", PAPER_CONFIGS + TINY_CONFIGS, ids=lambda p: p.name)
def test_print_config(config, monkeypatch):
    # ESPnet's --print_config (AbsTask.print_config) reads sys.argv to find the
    # chosen classes and their defaults.
    monkeypatch.setattr(sys, "argv", ["merit_train", "--config", str(config)])
    buffer = io.StringIO()
    MeritTask.print_config(file=buffer)
    printed = yaml.safe_load(buffer.getvalue())
    given = yaml.safe_load(config.read_text())
    for key in ("frontend", "fusion", "se_head", "ser_head"):
        assert printed[key] == given.get(key, printed[key])
    for key, value in given.get("fusion_conf", {}).items():
        assert printed["fusion_conf"][key] == value


@pytest.mark.parametrize("config", TINY_CONFIGS, ids=lambda p: p.name)
def test_build_tiny_model(config, make_args):
    args = make_args(config)
    model = MeritTask.build_model(args)
    given = yaml.safe_load(config.read_text())
    assert (model.se_head is None) == (given["se_head"] is None)
    assert (model.ser_head is None) == (given["ser_head"] is None)
    if model.ser_head is not None:
        # "balanced" was replaced by the numbers, so config.yaml carries them.
        assert args.ser_loss_conf["class_weights"] == [1.0, 1.0, 1.0, 1.0]
        assert model.ser_head.output_size() == 4


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
    args = make_args(TINY_CONFIGS[-1], data=(skewed, valid))
    model = MeritTask.build_model(args)
    counts = np.array([11, 3, 3, 3])
    expected = 20 / (4 * counts)
    np.testing.assert_allclose(args.ser_loss_conf["class_weights"], expected, rtol=1e-5)
    np.testing.assert_allclose(
        model.ser_loss.class_weights.numpy(), expected, rtol=1e-5
    )


def test_frontend_learning_rate_scale(make_args):
    args = make_args(
        TINY_CONFIGS[-1], "--optim_conf", "lr=0.002", "--frontend_lr_scale", "0.25"
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


# ---- bad input: each a clear error naming what is wrong --------------------------


def _run(cmd):
    with pytest.raises(SystemExit) as e:
        train_main(cmd)
    return str(e.value.code)


@pytest.fixture
def base_cmd(train_cmd):
    return lambda config=TINY_CONFIGS[-1], **kw: train_cmd(config, **kw)


def test_unknown_fusion_is_a_clear_error(base_cmd, tmp_path):
    config = tmp_path / "bad.yaml"
    conf = yaml.safe_load(TINY_CONFIGS[-1].read_text())
    conf["fusion"] = "moe_of_doom"
    conf.pop("fusion_conf", None)
    config.write_text(yaml.safe_dump(conf))
    message = _run(base_cmd(config=config))
    assert "fusion: 'moe_of_doom' is not one of" in message
    assert "sparse_moe" in message


def test_unknown_head_is_a_clear_error(base_cmd):
    message = _run([*base_cmd(), "--ser_head", "transformer"])
    # argparse names the option and the valid choices.
    assert message == "2"


def test_label_not_in_emotion_list(base_cmd, data_dirs, tmp_path):
    train, valid = data_dirs
    bad = tmp_path / "train"
    shutil.copytree(train, bad)
    lines = (bad / "emotion").read_text().splitlines()
    lines[3] = lines[3].split()[0] + " O"
    (bad / "emotion").write_text("\n".join(lines) + "\n")
    message = _run(base_cmd(data=(bad, valid)))
    assert f"{bad}/emotion:4" in message
    assert "emotion label 'O'" in message and "emotion list" in message


def test_missing_clean_reference_with_se_on(base_cmd):
    message = _run(base_cmd(names=("speech", "emotion")))
    assert "SE head is on" in message and "speech_ref1" in message


def test_missing_emotion_with_ser_on(base_cmd):
    message = _run(base_cmd(names=("speech", "speech_ref1")))
    assert "SER head is on" in message and "'emotion'" in message


def test_wrong_sample_rate(base_cmd, data_dirs, tmp_path):
    train, valid = data_dirs
    bad = tmp_path / "train"
    shutil.copytree(train, bad)
    wav8k = tmp_path / "8k.wav"
    soundfile.write(wav8k, np.zeros(8000, dtype=np.float32), 8000)
    lines = (bad / "wav.scp").read_text().splitlines()
    lines[0] = f"{lines[0].split()[0]} {wav8k}"
    (bad / "wav.scp").write_text("\n".join(lines) + "\n")
    message = _run(base_cmd(data=(bad, valid)))
    assert f"{bad}/wav.scp:1" in message and "8000 Hz" in message and "16000" in message


def test_missing_audio_file(base_cmd, data_dirs, tmp_path):
    train, valid = data_dirs
    bad = tmp_path / "train"
    shutil.copytree(train, bad)
    lines = (bad / "spk1.scp").read_text().splitlines()
    lines[1] = f"{lines[1].split()[0]} /nonexistent/clean.wav"
    (bad / "spk1.scp").write_text("\n".join(lines) + "\n")
    message = _run(base_cmd(data=(bad, valid)))
    assert f"{bad}/spk1.scp:2" in message and "/nonexistent/clean.wav" in message


def test_mismatched_head_and_loss(make_args):
    args = make_args(TINY_CONFIGS[-1], "--ser_loss", "ccc")
    with pytest.raises(
        MeritInputError, match="ser_loss 'ccc' trains on 'emotion_attr'"
    ):
        MeritTask.build_model(args)


def test_attribute_regressor_builds_and_trains(make_args):
    args = make_args(
        TINY_CONFIGS[-1],
        "--ser_head",
        "attribute_regressor",
        "--ser_loss",
        "ccc",
        "--ser_loss_conf",
        "class_weights=null",
        names=("speech", "speech_ref1", "emotion_attr"),
    )
    args.ser_loss_conf = {}
    model = MeritTask.build_model(args)
    assert model.ser_head.output_size() == 3
    wav = torch.randn(2, 16000)
    loss, stats, _ = model(
        wav,
        torch.tensor([16000, 12000]),
        speech_ref1=wav,
        speech_ref1_lengths=torch.tensor([16000, 12000]),
        emotion_attr=torch.tensor([[5.0, 2.0, 4.0], [2.0, 3.0, 2.5]]),
    )
    loss.backward()
    assert torch.isfinite(loss) and "acc" not in stats


def test_fbank_frontend_is_a_yaml_edit(data_dirs, tmp_path):
    train, valid = data_dirs
    conf = yaml.safe_load(TINY_CONFIGS[-1].read_text())
    conf.update(frontend="fbank", frontend_conf={"n_mels": 40})
    config = tmp_path / "fbank.yaml"
    config.write_text(yaml.safe_dump(conf))
    args = MeritTask.get_parser().parse_args(
        [
            "--config",
            str(config),
            "--emotion_list",
            str(train / "emotion_list"),
            *data_args(train, valid),
        ]
    )
    model = MeritTask.build_model(args)
    assert model.frontend.num_layers() == 1 and model.se_head.repeat == 1
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
