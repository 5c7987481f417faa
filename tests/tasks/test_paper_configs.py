"""The paper-scale configs build with WavLM Large's shape and the paper's sizes.

A randomly initialised WavLM Large-shaped checkpoint stands in for ``wavlm_large``
(which downloads), everything else comes from the config unchanged.
"""

import gc

import numpy as np
import pytest
import yaml
from merit_testing import PAPER_CONFIGS, data_args

from espnet2_merit.tasks.merit import MeritTask

D, L, E, H, OUT = 1024, 25, 3, 4096, 1024


def _lstm(inp, hidden, layers=2):
    per_dir = [
        4 * hidden * ((inp if i == 0 else 2 * hidden) + hidden) + 8 * hidden
        for i in range(layers)
    ]
    return 2 * sum(per_dir)


def _expected(conf, feat):
    """Parameter counts of the fusion and heads of the paper's architecture."""
    counts = {}
    experts = E * (L * D * H + H + H * OUT + OUT)
    routers = lambda n_tasks: n_tasks * (L * D * E + E)  # noqa: E731
    tasks = conf["tasks"]
    n_tasks = len(tasks)
    counts["fusion"] = {
        "sparse_moe": 2 * L * D + experts + routers(n_tasks),
        "dense_moe": 2 * L * D + experts + routers(n_tasks),
        "weighted_sum": 2 * L * D + L,
        "last_layer": 0,
    }[conf["fusion"]]
    if "se" in tasks:
        counts["heads.se"] = (
            (201 + feat) * 256 + 256 + _lstm(256, 256) + 256 * 201 + 201
        )
    if "ser" in tasks:
        counts["heads.ser"] = (feat * feat + feat + feat) + (
            2 * feat * 1024 + 1024 + 2 * 1024 + 1024 * 4 + 4
        )
    return counts


@pytest.fixture(scope="module")
def large_wavlm(tmp_path_factory):
    from espnet2_merit.utils.ssl_checkpoint import make_wavlm_checkpoint

    return make_wavlm_checkpoint(tmp_path_factory.mktemp("ssl") / "large.pt", "large")


@pytest.mark.slow
@pytest.mark.parametrize("config", PAPER_CONFIGS, ids=lambda p: p.stem)
def test_paper_config_builds_at_paper_scale(config, large_wavlm, data_dirs, tmp_path):
    if "text_frontend" in config.read_text():
        # Needs roberta-large (a download); its tiny twins are tested instead.
        pytest.skip("speech + text configs load their text encoder by name")
    train, valid = data_dirs
    stats = tmp_path / "feats_stats.npz"
    np.savez(stats, count=np.array(1000), sum=np.zeros(1), sum_square=np.ones(1) * 1000)
    args = MeritTask.get_parser().parse_args(
        [
            "--config",
            str(config),
            "--frontend_conf",
            "upstream=wavlm_local",
            "--frontend_conf",
            f"path_or_url={large_wavlm}",
            "--normalize_conf",
            f"stats_file={stats}",
            "--emotion_list",
            str(train / "emotion_list"),
            *data_args(train, valid),
        ]
    )
    model = MeritTask.build_model(args)
    assert model.frontend.num_layers() == L and model.frontend.output_size() == D
    conf = yaml.safe_load(config.read_text())
    feat = model.fusion.output_size()
    assert feat == (OUT if conf["fusion"].endswith("moe") else D)
    for part, expected in _expected(conf, feat).items():
        module = model.get_submodule(part)
        assert sum(p.numel() for p in module.parameters()) == expected, part
    n_ssl = sum(p.numel() for p in model.frontend.parameters())
    assert 310e6 < n_ssl < 320e6  # WavLM Large: 315 M
    if "ser" in conf["tasks"]:
        assert args.frontend_lr_scale == 0.5 and args.optim_conf["lr"] == 5e-5
    del model
    gc.collect()
