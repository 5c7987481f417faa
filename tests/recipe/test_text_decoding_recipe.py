"""merit.sh stage 9 with a text model: the test sets' Kaldi ``text`` goes to
merit_inference as a second data entry (keys prefixed like the wav.scp's), the
decode dir gets the transcripts read, a set without ``text`` is a clear error
unless ``--asr_model`` transcribes it.

The corpus is the generated data dirs (with transcripts) laid out by a stage-1
script that also writes the mini recipe's tiny checkpoints (its own
``local/data.sh`` lines)."""

import os
import subprocess
import sys

import pytest
from merit_testing import mini_recipe_on

from espnet2_merit.utils.datadir import read_kaldi

TEXT = "conf/tuning/train_text_only_tiny.yaml"


def _merit(recipe, first, last, *more):
    env = dict(os.environ, MERIT_PYTHON=sys.executable, MERIT_CMD_BACKEND="local")
    env["OMP_NUM_THREADS"] = "1"
    env["HF_HUB_OFFLINE"] = "1"
    cmd = ["./merit.sh", "--stage", str(first), "--stop_stage", str(last),
           "--simulate_noise", "false", "--train_set", "train", "--valid_set", "dev",
           "--test_sets", "test", "--train_config", TEXT,
           "--ngpu", "0", "--nj", "1", "--inference_nj", "2", *more]  # fmt: skip
    out = subprocess.run(cmd, cwd=recipe, env=env, capture_output=True, text=True)
    return out.returncode, out.stdout + out.stderr


@pytest.mark.slow
def test_stage9_passes_the_transcripts(tmp_path, data_dirs):
    train, valid = data_dirs
    recipe = mini_recipe_on(data_dirs, tmp_path / "r")
    rc, log = _merit(recipe, 1, 9)
    assert rc == 0, log[-4000:]
    decode = recipe / "exp" / "merit_train_text_only_tiny" / "decode" / "test"
    given = read_kaldi(valid / "text")
    assert read_kaldi(decode / "text") == {
        k: " ".join(v.split()) for k, v in given.items()
    }
    assert set(read_kaldi(decode / "emotion")) == set(given)
    logdir = decode.parent / "logdir"
    assert "all.text,text,text" in (logdir / "inference.1.log").read_text()

    # Without the transcripts: an error naming the file (the fingerprint holds
    # them, so the set is decoded again), or the ASR model transcribes.
    test_text = recipe / "dump" / "raw" / "test" / "text"
    assert test_text.is_file()
    test_text.unlink()
    rc, log = _merit(recipe, 9, 9)
    assert rc == 1, log[-3000:]
    assert "reads transcripts, but dump/raw/test/text is missing" in log, log[-3000:]
    assert "--asr_model" in log

    from espnet2_merit.utils.asr_checkpoint import make_ctc_checkpoint

    ctc = make_ctc_checkpoint(tmp_path / "ctc")
    rc, log = _merit(
        recipe, 9, 9, "--inference_args", f"--asr_model {ctc} --batch_size 2"
    )
    assert rc == 0, log[-3000:]
    heard = read_kaldi(decode / "text")
    assert set(heard) == set(given) and heard != read_kaldi(valid / "text")
