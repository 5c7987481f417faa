"""Shared fixtures: a tiny local WavLM checkpoint and generated data directories."""

from pathlib import Path

import pytest
from merit_testing import data_args


@pytest.fixture(scope="session")
def tiny_wavlm(tmp_path_factory) -> Path:
    from espnet2_merit.utils.ssl_checkpoint import make_wavlm_checkpoint

    return make_wavlm_checkpoint(tmp_path_factory.mktemp("ssl") / "tiny.pt", "tiny")


@pytest.fixture(scope="session")
def data_dirs(tmp_path_factory):
    """(train, valid) data dirs of generated noisy/clean speech with labels."""
    from espnet2_merit.utils.synthetic import make_data_dir

    root = tmp_path_factory.mktemp("data")
    return (
        make_data_dir(root / "train", num_utts=20, seed=1),
        make_data_dir(root / "valid", num_utts=6, seed=2),
    )


@pytest.fixture
def make_args(tiny_wavlm, data_dirs, tmp_path):
    """Factory: parsed MeritTask arguments for a config, on the tiny WavLM and the
    generated data, with extra command-line options appended."""
    from espnet2_merit.tasks.merit import MeritTask

    def make(config, *extra, names=("speech", "speech_ref1", "emotion"), data=None):
        train, valid = data or data_dirs
        cmd = [
            "--config",
            str(config),
            "--frontend_conf",
            f"path_or_url={tiny_wavlm}",
            "--emotion_list",
            str(train / "emotion_list"),
            "--output_dir",
            str(tmp_path / "exp"),
            *data_args(train, valid, names),
            *extra,
        ]
        return MeritTask.get_parser().parse_args(cmd)

    return make
