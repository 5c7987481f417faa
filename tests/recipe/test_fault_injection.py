"""Each long-running step killed (SIGKILL) part-way and run again: the re-run
completes, trusts nothing half-written, and its outputs are byte-identical to an
uninterrupted run's (training: the same final checkpoint after ``--resume``)."""

import importlib
import shutil
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import soundfile
import torch
from merit_testing import SPARSE_TINY, data_args, kill_at, kill_when

from espnet2_merit.utils.synthetic import make_data_dir

PY = [sys.executable, "-m"]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """Every run here, in this process and killed, on one thread: float results
    depend on the thread count, and another test may have changed this process's."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)


def _run(cmd: List[str]):
    """Run ``cmd`` (``python -m <module> args``) to completion in this process: only
    the killed runs pay a fresh interpreter's imports."""
    module, args = cmd[len(PY)], cmd[len(PY) + 1 :]
    try:
        importlib.import_module(module).main(args)
    except SystemExit as e:
        assert e.code in (None, 0), f"{module} exited with {e.code}"


def _files(root: Path) -> Dict[str, bytes]:
    """Every file under ``root`` (paths relative), with its bytes; paths inside
    text files are made relative too, so two output dirs compare."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = p.read_bytes().replace(
                str(root).encode(), b"<root>"
            )
    return out


@pytest.fixture(scope="module")
def clean_dir(tmp_path_factory):
    return make_data_dir(tmp_path_factory.mktemp("clean") / "data", num_utts=12, seed=4)


@pytest.fixture(scope="module")
def noise_scp(tmp_path_factory):
    root = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(0)
    lines = []
    for i in range(3):
        soundfile.write(root / f"n{i}.wav", 0.1 * rng.standard_normal(32000), 16000)
        lines.append(f"noise{i} {root / f'n{i}.wav'}\n")
    (root / "noise.scp").write_text("".join(lines))
    return root / "noise.scp"


def _simulate(clean_dir, noise_scp, out):
    return [*PY, "espnet2_merit.bin.merit_simulate_noise", "--data_dir", str(clean_dir),
            "--noise_scp", str(noise_scp), "--snr", "0", "--outdir", str(out),
            "--seed", "3", "--nj", "1"]  # fmt: skip


def test_noise_simulation(clean_dir, noise_scp, tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "out"
    _run(_simulate(clean_dir, noise_scp, ref))
    # Killed as it writes its 4th wav (~700 utt/s here: polling could miss it).
    assert kill_at(_simulate(clean_dir, noise_scp, out), tmp_path, "soundfile.write", 4)
    assert len(list((out / "wavs").glob("*.wav"))) == 3
    assert not (out / ".done").exists()
    _run(_simulate(clean_dir, noise_scp, out))
    assert _files(out) == _files(ref)


def _format(src, out):
    return [*PY, "espnet2_merit.bin.merit_format_wav", "--fs", "8000", "--nj", "1",
            str(src), str(out)]  # fmt: skip


def test_audio_formatting(clean_dir, tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "out"
    _run(_format(clean_dir, ref))
    assert kill_at(_format(clean_dir, out), tmp_path, "soundfile.write", 4)
    assert len(list((out / "data" / "wav").glob("*.wav"))) == 3
    assert not (out / "wav.scp").exists()  # lists are written last
    _run(_format(clean_dir, out))
    assert _files(out) == _files(ref)


def _decode(trained_exp, wav_scp, out):
    return [*PY, "espnet2_merit.bin.merit_inference", "--train_config",
            str(trained_exp[0]), "--model_file", str(trained_exp[1]),
            "--data_path_and_name_and_type", f"{wav_scp},speech,sound",
            "--output_dir", str(out)]  # fmt: skip


def test_inference(trained_exp, clean_dir, tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "out"
    scp = clean_dir / "wav.scp"
    _run(_decode(trained_exp, scp, ref))
    assert kill_at(_decode(trained_exp, scp, out), tmp_path, "soundfile.write", 3)
    assert len(list((out / "wavs" / "se").glob("*.wav"))) == 2
    assert not (out / "outputs.json").exists()
    assert not (out / "emotion").exists()  # only its .tmp: not trusted
    _run(_decode(trained_exp, scp, out))
    assert _files(out) == _files(ref)


def test_scoring(trained_exp, clean_dir, tmp_path):
    hyp = tmp_path / "hyp"
    _run(_decode(trained_exp, clean_dir / "wav.scp", hyp))
    ref_dir = tmp_path / "refdir"
    shutil.copytree(clean_dir, ref_dir)

    def score(out):
        return [*PY, "espnet2_merit.bin.merit_score", "--ref_dir", str(ref_dir),
                "--hyp_dir", str(hyp), "--out_dir", str(out), "--nj", "1"]  # fmt: skip

    _run(score(tmp_path / "ref"))
    (ref_dir / "noisy_scores.json").unlink()
    out = tmp_path / "out"
    log = tmp_path / "kill.log"
    # Killed while the SE metrics are computed (their progress bar is on stderr).
    killed = kill_when(score(out), tmp_path, lambda: "SE metrics" in log.read_text())
    assert killed and not (out / "summary.json").exists()
    _run(score(out))
    ours, theirs = _files(out), _files(tmp_path / "ref")
    assert ours.keys() == theirs.keys()
    for name in ours:
        if name != "summary.json":  # it records its own input paths
            assert ours[name] == theirs[name], name


@pytest.mark.slow
def test_training_resumes_to_the_same_checkpoint(tiny_wavlm, data_dirs, tmp_path):
    def train(out):
        return [*PY, "espnet2_merit.bin.merit_train", "--config", str(SPARSE_TINY),
                "--frontend_conf", f"path_or_url={tiny_wavlm}",
                "--emotion_list", str(data_dirs[0] / "emotion_list"),
                "--output_dir", str(out), "--ngpu", "0", "--max_epoch", "2",
                "--resume", "true", *data_args(*data_dirs)]  # fmt: skip

    _run(train(tmp_path / "ref"))
    out = tmp_path / "out"
    killed = kill_when(train(out), tmp_path, lambda: (out / "1epoch.pth").exists())
    assert killed and not (out / "2epoch.pth").exists()
    _run(train(out))
    ref = torch.load(tmp_path / "ref" / "2epoch.pth", weights_only=True)
    got = torch.load(out / "2epoch.pth", weights_only=True)
    assert ref.keys() == got.keys()
    for key in ref:
        assert torch.equal(ref[key], got[key]), key
