"""Shared fixtures: a tiny local WavLM checkpoint and generated data directories."""

from pathlib import Path

import pytest
from merit_testing import data_args


@pytest.fixture(scope="session")
def tiny_wavlm(tmp_path_factory) -> Path:
    from espnet2_merit.utils.ssl_checkpoint import make_wavlm_checkpoint

    return make_wavlm_checkpoint(tmp_path_factory.mktemp("ssl") / "tiny.pt", "tiny")


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory) -> Path:
    from espnet2_merit.utils.text_checkpoint import make_roberta_checkpoint

    return make_roberta_checkpoint(tmp_path_factory.mktemp("text") / "roberta")


@pytest.fixture(scope="session")
def tiny_asr(tmp_path_factory) -> Path:
    """A tiny random wav2vec2 CTC model and its processor (a local folder)."""
    from espnet2_merit.utils.asr_checkpoint import make_ctc_checkpoint

    return make_ctc_checkpoint(tmp_path_factory.mktemp("asr") / "ctc")


@pytest.fixture(scope="session")
def data_dirs(tmp_path_factory):
    """(train, valid) data dirs of generated noisy/clean speech with labels."""
    from espnet2_merit.utils.synthetic import make_data_dir

    root = tmp_path_factory.mktemp("data")
    return (
        make_data_dir(root / "train", num_utts=20, seed=1, text=True),
        make_data_dir(root / "valid", num_utts=6, seed=2, text=True),
    )


@pytest.fixture
def train_cmd(tiny_wavlm, data_dirs, tmp_path, request):
    """Factory: merit_train options for a config on the tiny WavLM and the generated
    data (``data=(train, valid)`` to swap the data dirs), ``extra`` appended; a
    config with a text frontend gets the tiny RoBERTa and the data 'text'."""

    def make(config, *extra, names=("speech", "speech_ref1", "emotion"), data=None):
        train, valid = data or data_dirs
        conf = Path(config).read_text()
        local = []
        if "wavlm_local" in conf:
            local += ["--frontend_conf", f"path_or_url={tiny_wavlm}"]
        if "text_frontend:" in conf:
            roberta = request.getfixturevalue("tiny_roberta")
            local += ["--text_frontend_conf", f"model_name_or_path={roberta}"]
            names = tuple(names) + ("text",) * ("text" not in names)
        return [
            "--config", str(config),
            *local,
            "--emotion_list", str(train / "emotion_list"),
            "--output_dir", str(tmp_path / "exp"),
            *data_args(train, valid, names),
            *extra,
        ]  # fmt: skip

    return make


@pytest.fixture
def make_args(train_cmd):
    """Factory: parsed MeritTask arguments for ``train_cmd(...)``."""
    from espnet2_merit.tasks.merit import MeritTask

    return lambda *a, **kw: MeritTask.get_parser().parse_args(train_cmd(*a, **kw))


@pytest.fixture(scope="session")
def trained_exp(tiny_wavlm, data_dirs, tmp_path_factory):
    """A tiny sparse MERIT trained for one epoch by ESPnet's trainer, with global
    waveform statistics (a file the config points to, as in the recipe).

    Returns (config.yaml, best checkpoint).
    """
    import numpy as np
    from merit_testing import SPARSE_TINY, train_tiny

    root = tmp_path_factory.mktemp("trained")
    stats = root / "feats_stats.npz"
    np.savez(stats, count=np.array(1000), sum=np.zeros(1), sum_square=np.full(1, 10.0))
    opts = ["--normalize", "global_mvn", "--normalize_conf", f"stats_file={stats}"]
    return train_tiny(root, SPARSE_TINY, tiny_wavlm, data_dirs, *opts)


@pytest.fixture(scope="session")
def text_exp(tiny_wavlm, tiny_roberta, data_dirs, tmp_path_factory):
    """(config.yaml, checkpoint) of the tiny speech + text model (late fusion, an
    SE task too) trained for one epoch by ESPnet's trainer: the model the text
    inference, CLI and export tests share."""
    from merit_testing import SPEECH_TEXT_TINY, train_tiny

    root = tmp_path_factory.mktemp("text_exp")
    opts = ["--text_frontend_conf", f"model_name_or_path={tiny_roberta}"]
    names = ("speech", "speech_ref1", "emotion", "text")
    return train_tiny(root, SPEECH_TEXT_TINY, tiny_wavlm, data_dirs, *opts, names=names)
