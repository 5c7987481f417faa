"""Checkpoints are loaded weights-only everywhere (a pickle that would run code is
refused with a one-line error naming the file), saved atomically, and a torn
``checkpoint.pth`` falls back to the previous one."""

import os
import shutil

import pytest
import torch
from merit_testing import SPARSE_TINY

from espnet2_merit.bin.merit_train import main as train_main
from espnet2_merit.errors import MeritInputError
from espnet2_merit.tasks.merit import MeritTask
from espnet2_merit.utils.checkpoint import PREVIOUS, atomic_torch_save, load_checkpoint


class _Evil:
    """Unpickling this runs a shell command."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_checkpoint(path, marker, **extra):
    torch.save({"model": _Evil(marker), **extra}, path)
    return path


def _run(cmd):
    with pytest.raises(SystemExit) as e:
        train_main(cmd)
    return str(e.value.code)


def test_init_param_with_pickled_code_is_refused(train_cmd, tmp_path):
    marker = tmp_path / "pwned"
    evil = _evil_checkpoint(tmp_path / "evil.pth", marker)
    message = _run(train_cmd(SPARSE_TINY, "--ngpu", "0", "--init_param", str(evil)))
    assert "--init_param" in message and "evil.pth: refused" in message
    assert not marker.exists()


def test_init_param_part_must_be_in_the_checkpoint(train_cmd, trained_exp):
    init = f"{trained_exp[1]}:fusionx:fusionx"
    message = _run(train_cmd(SPARSE_TINY, "--ngpu", "0", "--init_param", init))
    assert "no parameters under 'fusionx.'" in message, message
    assert "fusion, heads" in message, message


def test_ssl_checkpoint_with_pickled_code_is_refused(make_args, tmp_path):
    marker = tmp_path / "pwned"
    evil = _evil_checkpoint(tmp_path / "ssl.pt", marker)
    args = make_args(SPARSE_TINY, "--frontend_conf", f"path_or_url={evil}")
    with pytest.raises(MeritInputError, match="frontend_conf.path_or_url .*refused"):
        MeritTask.build_model(args)
    assert not marker.exists()


def test_model_file_with_pickled_code_is_refused(trained_exp, tmp_path):
    marker = tmp_path / "pwned"
    evil = _evil_checkpoint(tmp_path / "model.pth", marker)
    with pytest.raises(MeritInputError, match="model.pth: refused"):
        MeritTask.build_model_from_file(trained_exp[0], evil)
    assert not marker.exists()


def test_text_and_truncated_files_are_one_line_errors(trained_exp, tmp_path):
    text = tmp_path / "text.pth"
    text.write_text("not a checkpoint")
    torn = tmp_path / "torn.pth"
    torn.write_bytes(trained_exp[1].read_bytes()[:5000])
    for path in (text, torn):
        with pytest.raises(
            MeritInputError, match=f"{path.name}: (not a readable|corrupt)"
        ):
            load_checkpoint(path, "model file")


@pytest.mark.slow
def test_resume_is_weights_only_atomic_and_survives_a_torn_checkpoint(
    train_cmd, tmp_path
):
    exp = tmp_path / "exp"
    # Every epoch file is kept (2epoch.pth is compared below) and averaged.
    cmd = train_cmd(SPARSE_TINY, "--ngpu", "0", "--keep_nbest_models", "3")
    train_main([*cmd, "--max_epoch", "2"])
    assert (exp / "checkpoint.pth").is_file() and (exp / PREVIOUS).is_file()
    assert not list(exp.glob("*.tmp"))
    reference = torch.load(exp / "2epoch.pth", weights_only=True)

    # A pickle that runs code, left as checkpoint.pth: refused, nothing runs.
    good = tmp_path / "good.pth"
    shutil.copy(exp / "checkpoint.pth", good)
    marker = tmp_path / "pwned"
    _evil_checkpoint(exp / "checkpoint.pth", marker, optimizers=[])
    message = _run([*cmd, "--max_epoch", "3", "--resume", "true"])
    assert "--resume" in message and "refused" in message and not marker.exists()

    # A torn checkpoint.pth (a kill during ESPnet's own save): the previous one.
    (exp / "checkpoint.pth").write_bytes(good.read_bytes()[:10000])
    train_main([*cmd, "--max_epoch", "3", "--resume", "true"])
    state = torch.load(exp / "checkpoint.pth", weights_only=True)
    assert state["reporter"]["epoch"] == 3
    # The previous checkpoint ended epoch 1: epoch 2 was trained again, from the
    # same state with the same seed, so its weights are the same.
    again = torch.load(exp / "2epoch.pth", weights_only=True)
    for k, v in reference.items():
        torch.testing.assert_close(again[k], v, msg=k)

    # A config that changed a size: a clear error, not torch's tensor list.
    wider = [*cmd, "--tasks", "se.head_conf.hidden_size=48", "--resume", "true"]
    message = _run([*wider, "--max_epoch", "4"])
    assert "does not fit the model the config builds" in message
    assert "checkpoint*.pth" in message


def test_atomic_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pth"
    with atomic_torch_save():
        torch.save({"epoch": 1}, path)
        torch.save({"epoch": 2}, path)
        torch.save({"x": 1}, tmp_path / "1epoch.pth")
    assert torch.load(path)["epoch"] == 2
    assert torch.load(tmp_path / PREVIOUS)["epoch"] == 1
    assert not list(tmp_path.glob("*.tmp"))
    assert torch.save.__module__ == "torch.serialization"  # restored
