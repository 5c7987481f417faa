"""merit.sh stage 3 with --asr_model (the tiny CTC model): --asr_sets missing
transcribes only the set without a text; --asr_sets all transcribes every set's
noisy speech, keeps the reference as text.ref and logs the WER; the ASR options
enter the stage's markers of the sets they transcribe, and only those."""

import json
import os
import subprocess
import sys

from merit_testing import REPO, SPARSE_TINY, copy_recipe

from espnet2_merit.utils.datadir import read_kaldi
from espnet2_merit.utils.synthetic import make_data_dir


def test_stage_3_transcribes_the_noisy_speech(tiny_asr, tmp_path):
    recipe = copy_recipe(REPO / "egs2" / "mini_msp_podcast" / "merit1", tmp_path / "r")
    data = recipe / "data"
    make_data_dir(data / "train", num_utts=3, seed=1, text=True)
    make_data_dir(data / "dev", num_utts=3, seed=2)  # no transcripts
    env = dict(
        os.environ,
        MERIT_PYTHON=sys.executable,
        MERIT_CMD_BACKEND="local",
        HF_HUB_OFFLINE="1",
    )

    def stage3(*extra):
        cmd = [
            "./merit.sh", "--stage", "3", "--stop_stage", "3",
            "--train_config", str(SPARSE_TINY), "--simulate_noise", "false",
            "--train_set", "train", "--valid_set", "dev", "--test_sets", "",
            "--nj", "1", "--asr_model", str(tiny_asr),
            "--asr_conf", "local_files_only=true batch_size=2", *extra,
        ]  # fmt: skip
        out = subprocess.run(cmd, cwd=recipe, env=env, capture_output=True, text=True)
        return out.returncode, out.stdout + out.stderr

    org = recipe / "dump" / "raw" / "org"
    rc, log = stage3()  # --asr_sets missing (the default)
    assert rc == 0, log[-4000:]
    assert (org / "train" / "text").read_text() == (data / "train" / "text").read_text()
    assert not (org / "train" / "text.ref").exists()
    dev = read_kaldi(org / "dev" / "text")
    assert list(dev) == sorted(read_kaldi(data / "dev" / "wav.scp"))
    script = (recipe / "dump" / "log" / "format_wav.sh").read_text()
    assert script.count("espnet2_merit.bin.merit_asr") == 1
    assert "--asr_conf local_files_only=true --asr_conf batch_size=2" in script

    rc, log = stage3("--asr_sets", "all")
    assert rc == 0, log[-4000:]
    # dev's work is the same as before (it had no text): kept; train transcribed
    assert "skip: dump/raw/org/dev" in log
    train = org / "train"
    assert (train / "text.ref").read_text() == (data / "train" / "text").read_text()
    assert set(read_kaldi(train / "text")) == set(read_kaldi(train / "text.ref"))
    assert read_kaldi(train / "text") != read_kaldi(train / "text.ref")  # gibberish
    wer = json.loads((train / "asr_wer.json").read_text())
    assert wer["utterances"] == 3 and wer["wer"] > 0.5
    assert "train: ASR WER" in log and "dev: ASR" not in log

    rc, log = stage3("--asr_sets", "all")  # nothing changed: nothing redone
    assert rc == 0 and log.count("skip: dump/raw/org/") == 2, log[-4000:]
    # without ASR the sets are as after stage 3 without it: train formatted anew
    rc, log = stage3("--asr_model", "")
    assert rc == 0 and "skip: dump/raw/org/dev" not in log, log[-4000:]
    assert (train / "text").read_text() == (data / "train" / "text").read_text()
    assert not (train / "text.ref").exists()

    rc, log = stage3("--asr_sets", "some")
    assert rc == 2 and "--asr_sets must be missing or all, not some" in log
