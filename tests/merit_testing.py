"""Constants and helpers shared by the tests (on the path via setup.cfg).

Run as a script, it is ``kill_at``'s child: ``merit_testing.py TARGET N MODULE
ARGS...`` runs ``python -m MODULE ARGS...`` and SIGKILLs itself on entering the
N-th call of TARGET (``package.module.function``).
"""

import functools
import importlib.util
import os
import runpy
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
TINY_CONFIGS = sorted((CONF / "tuning").glob("train_*_tiny.yaml"))
PAPER_CONFIGS = sorted(CONF.glob("*.yaml"))
SPARSE_TINY = CONF / "tuning" / "train_sparse_merit_tiny.yaml"
THREE_TASK_TINY = CONF / "tuning" / "train_sparse_merit_3task_tiny.yaml"


def data_args(train: Path, valid: Path, names=("speech", "speech_ref1", "emotion")):
    """Command-line data and shape options for MeritTask."""
    from espnet2_merit.utils.datadir import data_options

    cmd = []
    for split, d in (("train", train), ("valid", valid)):
        cmd += data_options(split, d, names)
        cmd += [f"--{split}_shape_file", f"{d}/wav.scp"]
    return cmd


MINI_LOCAL = "egs2/mini_msp_podcast/merit1/local"
MSP_LOCAL = "egs2/msp_podcast/merit1/local"


def load_local(name: str, folder: str = MINI_LOCAL):
    """A recipe's ``local/`` script (or a ``bench/`` one) as a module (registered
    in ``sys.modules``, so worker processes can unpickle its functions)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, REPO / folder / f"{name}.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def copy_recipe(recipe: Path, dst: Path) -> Path:
    """Copy a recipe directory's own files; its relative symlinks become absolute
    ones into this checkout (so the copy runs anywhere)."""
    skip = shutil.ignore_patterns("downloads", "data", "dump", "exp")
    shutil.copytree(recipe, dst, symlinks=True, ignore=skip)
    for link in [p for p in dst.rglob("*") if p.is_symlink()]:
        target = (recipe / link.relative_to(dst)).resolve()
        link.unlink()
        link.symlink_to(target)
    return dst


MINI_RECIPE = REPO / "egs2" / "mini_msp_podcast" / "merit1"

# Stage 1 of a scratch mini recipe on the generated data dirs: they are laid out
# as a recipe's data.sh writes them, and the tiny WavLM and RoBERTa are written by
# the mini recipe's own local/data.sh lines (so the tiny configs' exp/ssl and
# exp/text paths are the recipe's).
_GENERATED_DATA_SH = """#!/usr/bin/env bash
set -euo pipefail
. ./path.sh
seed=0
mkdir -p data
cp -r {train} data/train
cp -r {valid} data/dev
cp -r {valid} data/test
cp {train}/emotion_list data/emotion_list
{checkpoints}
"""


def mini_recipe_on(data_dirs, dst: Path) -> Path:
    """A copy of the mini recipe in ``dst`` whose stage 1 lays out the generated
    ``(train, valid)`` data dirs as data/{train,dev,test} (the test set is the
    valid one) and writes the tiny checkpoints."""
    lines = (MINI_RECIPE / "local" / "data.sh").read_text().splitlines()
    checkpoints = []
    for i, line in enumerate(lines):  # each ${python} -c "..." and its next line
        if line.startswith('${python} -c "from espnet2_merit.utils.'):
            checkpoints += [line, lines[i + 1]]
    assert len(checkpoints) == 4, checkpoints  # the WavLM and RoBERTa writers
    train, valid = data_dirs
    recipe = copy_recipe(MINI_RECIPE, dst)
    (recipe / "local" / "data.sh").write_text(
        _GENERATED_DATA_SH.format(
            train=train, valid=valid, checkpoints="\n".join(checkpoints)
        )
    )
    return recipe


def kill_when(cmd: List[str], cwd: Path, ready: Callable[[], bool], timeout=300):
    """Start ``cmd`` (its standard error in ``cwd/kill.log``), SIGKILL its process
    group once ``ready()`` holds; returns whether it was killed before it finished
    (else the test would check nothing)."""
    with open(cwd / "kill.log", "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.02)
    proc.wait()
    return False


def kill_at(cmd: List[str], cwd: Path, target: str, nth: int) -> bool:
    """Run ``cmd`` (``python -m MODULE ARGS``; its standard error in
    ``cwd/kill.log``) so that it SIGKILLs itself on entering the ``nth`` call of
    ``target`` (``"soundfile.write"``): killed at a known point however fast the
    machine, where ``kill_when``'s polling can miss a short run. Returns whether it
    died so (else the test would check nothing)."""
    assert cmd[1] == "-m", cmd
    child = [cmd[0], __file__, target, str(nth), *cmd[2:]]
    with open(cwd / "kill.log", "w") as log:
        proc = subprocess.run(child, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log)
    return proc.returncode == -signal.SIGKILL


def _die_at(target: str, nth: str, module: str, *args: str) -> None:
    owner_name, attr = target.rsplit(".", 1)
    owner = importlib.import_module(owner_name)
    real, calls = getattr(owner, attr), [0]

    @functools.wraps(real)
    def counted(*a, **kw):
        calls[0] += 1
        if calls[0] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*a, **kw)

    setattr(owner, attr, counted)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _die_at(*sys.argv[1:])


def noise_env(root: Path) -> Dict[str, str]:
    """Three generated noise directories (5 files of 2 s each) as the recipes'
    db.sh reads them: hum and hiss seen, babble unseen."""
    import numpy as np
    import soundfile

    rng = np.random.default_rng(0)
    dirs = {}
    for kind in ("hum", "hiss", "babble"):
        (root / kind).mkdir(parents=True)
        for i in range(5):
            wav = 0.05 * rng.standard_normal(16000 * 2)
            soundfile.write(root / kind / f"{i}.wav", wav, 16000)
        dirs[kind] = str(root / kind)
    return {
        "NOISE_SEEN_DIRS": f"{dirs['hum']} {dirs['hiss']}",
        "NOISE_UNSEEN_DIRS": dirs["babble"],
    }


SPEECH_TEXT_TINY = CONF / "tuning" / "train_speech_text_late_tiny.yaml"


def train_tiny(root: Path, config: Path, wavlm: Path, data_dirs, *options, names=None):
    """Train a tiny config for one epoch (ESPnet's trainer) on the generated data
    (``names``: the data of ``data_args``, its default without) with the tiny
    WavLM and further merit_train ``options``; returns (config.yaml, best
    checkpoint)."""
    from espnet2_merit.bin.merit_train import main as train_main

    train, valid = data_dirs
    data = data_args(train, valid, *(() if names is None else (names,)))
    train_main(
        [
            "--config", str(config),
            "--frontend_conf", f"path_or_url={wavlm}",
            *options,
            "--emotion_list", str(train / "emotion_list"),
            "--output_dir", str(root / "exp"),
            "--ngpu", "0",
            *data,
        ]
    )  # fmt: skip
    return root / "exp" / "config.yaml", root / "exp" / "valid.loss.best.pth"
