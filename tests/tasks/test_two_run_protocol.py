"""The two-run protocol (Interspeech 2025 challenge system, arXiv 2508.07282) at the
task level: a speech SER run and a text SER run, each fine-tuned separately, then
the fused config (conf/tuning/train_speech_text_fusion_tiny.yaml) started from
their best checkpoints with ``--init_param <ckpt>:<part>:<part>``, as merit.sh's
stage 8 passes it. The fusion step loads the branches' backbones, keeps them
exactly as trained (the config's ``freeze_param``) and trains only its head."""

import pytest
import torch
import yaml
from merit_testing import CONF

from espnet2_merit.bin.merit_train import main as train_main
from espnet2_merit.tasks.merit import MeritTask, merge_repeated

SPEECH = CONF / "tuning" / "train_ser_only_tiny.yaml"
TEXT = CONF / "tuning" / "train_text_only_tiny.yaml"
FUSED = CONF / "tuning" / "train_speech_text_fusion_tiny.yaml"
BEST = "valid.ser_f1_macro.best.pth"


def _part(state, prefix):
    return {k: v for k, v in state.items() if k.startswith(prefix + ".")}


def _run(train_cmd, tmp_path, name, config, *extra):
    cmd = train_cmd(config, *extra, names=("speech", "emotion"))
    out = tmp_path / name
    cmd[cmd.index("--output_dir") + 1] = str(out)
    train_main([*cmd, "--ngpu", "0", "--max_epoch", "1"])
    return out


def test_fused_config_freezes_the_backbones_in_its_yaml():
    conf = yaml.safe_load(FUSED.read_text())
    assert conf["freeze_param"] == ["frontend", "fusion", "text_frontend"]
    speech = yaml.safe_load(SPEECH.read_text())
    # The speech path is the speech run's, so its weights are what the fused
    # model computes with.
    for key in ("frontend", "frontend_conf", "normalize", "fusion"):
        assert conf[key] == speech[key], key


def test_full_size_fused_config_is_its_branches_speech_and_text_paths():
    """conf/speech_text_fusion.yaml (WavLM Large + roberta-large) computes with the
    speech path of conf/ser_only.yaml and the text path of conf/text_only.yaml,
    freezes both and has the tiny twin's head."""
    full = yaml.safe_load((CONF / "speech_text_fusion.yaml").read_text())
    speech = yaml.safe_load((CONF / "ser_only.yaml").read_text())
    text = yaml.safe_load((CONF / "text_only.yaml").read_text())
    tiny = yaml.safe_load(FUSED.read_text())
    for key in ("frontend", "frontend_conf", "normalize", "fusion", "fusion_conf"):
        assert full[key] == speech[key], key
    for key in ("text_frontend", "text_frontend_conf"):
        assert full[key] == text[key], key
    assert full["frontend_conf"]["upstream"] == "wavlm_large"
    assert full["text_frontend_conf"]["model_name_or_path"] == "roberta-large"
    assert full["freeze_param"] == tiny["freeze_param"]
    assert list(full["tasks"]) == list(tiny["tasks"]) == ["ser"]
    head, tiny_head = full["tasks"]["ser"], tiny["tasks"]["ser"]
    assert head["head"] == tiny_head["head"] == "multimodal_pooling"
    for key in ("modality_fusion", "text_pooling"):
        assert head["head_conf"][key] == tiny_head["head_conf"][key], key
    # The text branch: text alone, like its tiny twin.
    tiny_text = yaml.safe_load(TEXT.read_text())
    assert text["tasks"]["ser"]["head_conf"]["speech"] is False
    assert text["frontend"] == tiny_text["frontend"] == "fbank"


def test_fusion_step_keeps_branch_backbones_and_trains_the_head(
    train_cmd, tmp_path, tiny_wavlm, tiny_roberta
):
    speech = _run(train_cmd, tmp_path, "speech", SPEECH)
    text = _run(train_cmd, tmp_path, "text", TEXT)
    s_state = torch.load(speech / BEST, map_location="cpu")
    t_state = torch.load(text / BEST, map_location="cpu")
    inits = [
        "--init_param", f"{speech / BEST}:frontend:frontend",
        "--init_param", f"{text / BEST}:text_frontend:text_frontend",
    ]  # fmt: skip
    fused = _run(train_cmd, tmp_path, "fused", FUSED, *inits)
    f_state = torch.load(fused / BEST, map_location="cpu")

    # The model the fusion step started from, before --init_param (ESPnet seeds,
    # then builds): its backbones are the untrained checkpoints' and its head is
    # the one training started with.
    args = MeritTask.get_parser().parse_args(
        train_cmd(FUSED, names=("speech", "emotion"))
    )
    torch.manual_seed(args.seed)
    from espnet2.torch_utils.set_all_random_seed import set_all_random_seed

    set_all_random_seed(args.seed)
    fresh = MeritTask.build_model(args).state_dict()

    for prefix, branch in (("frontend", s_state), ("text_frontend", t_state)):
        mine, theirs = _part(f_state, prefix), _part(branch, prefix)
        assert mine and set(mine) == set(theirs), prefix
        for k in mine:  # exactly the branch run's weights, after a training epoch
            assert torch.equal(mine[k], theirs[k]), k
        # ... which the branch run changed: the init really loaded them (the
        # untrained weights differ).
        changed = [k for k in mine if not torch.equal(mine[k], fresh[k])]
        assert changed, f"{prefix}: the branch run's weights equal the untrained ones"
    head = {
        k: v for k, v in _part(f_state, "heads.ser").items() if v.is_floating_point()
    }
    init_head = _part(fresh, "heads.ser")
    assert any(
        not torch.equal(v, init_head[k]) for k, v in head.items() if k in init_head
    )
    # The speech run's SER head (attentive pooling) is not the fused one's.
    assert (
        "heads.ser.layer_weights" in f_state
        and "heads.ser.layer_weights" not in s_state
    )


@pytest.mark.parametrize("bad", ["frontend", "heads.ser"])
def test_init_from_a_branch_without_the_part_is_an_error(
    bad, train_cmd, tmp_path, tiny_wavlm, tiny_roberta
):
    from espnet2_merit.errors import MeritInputError

    ckpt = tmp_path / "text.pth"
    torch.save({"text_frontend.x": torch.zeros(1)}, ckpt)
    cmd = train_cmd(FUSED, "--init_param", f"{ckpt}:{bad}:{bad}",
                    names=("speech", "emotion"))  # fmt: skip
    with pytest.raises(MeritInputError, match=f"no parameters under '{bad}.'"):
        MeritTask.main(cmd=[*cmd, "--ngpu", "0", "--max_epoch", "1"])
    # merit_train: the same, as one line naming the option and the file.
    with pytest.raises(SystemExit, match=f"--init_param {ckpt}: no parameters"):
        train_main([*cmd, "--ngpu", "0", "--max_epoch", "1"])


def test_repeated_init_params_are_all_kept():
    # argparse keeps the last of ESPnet's nargs="*" --init_param: merit.sh's stage
    # 8 passes one per part (and per branch run), so they are joined.
    cmd = ["--config", "c.yaml", "--init_param", "a.pth:frontend:frontend",
           "--max_epoch", "1", "--init_param=b.pth:heads:heads", "c.pth:x:x",
           "--init_param", "d.pth"]  # fmt: skip
    assert merge_repeated(cmd, "--init_param") == [
        "--config", "c.yaml",
        "--init_param", "a.pth:frontend:frontend", "b.pth:heads:heads",
        "c.pth:x:x", "d.pth",
        "--max_epoch", "1",
    ]  # fmt: skip
    assert merge_repeated(["--init_param"], "--init_param") == ["--init_param"]
    assert merge_repeated(["--x", "1"], "--init_param") == ["--x", "1"]
    args = MeritTask.get_parser().parse_args(
        merge_repeated(["--init_param", "a", "--init_param", "b"], "--init_param")
    )
    assert args.init_param == ["a", "b"]
