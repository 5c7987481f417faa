"""Cascade unfreezing: the schedule, which parameters train at each epoch, the
optimizer's groups, and a resumed run with the same layers trainable."""

import pytest
import torch
from merit_testing import CONF

from espnet2_merit.bin.merit_train import main as train_main
from espnet2_merit.errors import MeritInputError
from espnet2_merit.tasks.merit import MeritTask
from espnet2_merit.train.unfreeze import EncoderUnfreezer, UnfreezeSchedule
from espnet2_merit.utils.checkpoint import load_checkpoint

CASCADE_TINY = CONF / "tuning" / "train_shared_ssl_cascade_tiny.yaml"
LAYER = "frontend.upstream.upstream.model.encoder.layers."


def test_periodic_and_explicit_schedules():
    periodic = UnfreezeSchedule.from_config({"start": 3, "every": 2, "layers": 1})
    assert [periodic.level(e, 0, 2) for e in range(1, 9)] == [0, 0, 1, 1, 2, 2, 3, 3]
    explicit = UnfreezeSchedule.from_config(
        {"unit": "step", "schedule": [[5, 1], [9, "all"]]}
    )
    assert [explicit.level(1, s, 2) for s in (1, 4, 5, 8, 9, 100)] == [0, 0, 1, 1, 3, 3]


@pytest.mark.parametrize(
    "conf, message",
    [
        ({"schedule": [[2, 1]], "start": 1}, "either 'schedule' or"),
        ({"unit": "iteration", "start": 1}, "unit='iteration'"),
        ({"schedule": [[3, 1], [2, 2]]}, r"schedule\[1\]"),
        ({"schedule": [[1, 2], [3, 1]]}, "only unfreezes"),
        ({"schedule": [[1, "most"]]}, "'all'"),
        ({"start": 0}, "start=0"),
        ({"begin": 1}, "unknown keys"),
        ({"schedule": []}, "is empty"),
    ],
)
def test_bad_schedules_name_the_field(conf, message):
    with pytest.raises(MeritInputError, match=message):
        UnfreezeSchedule.from_config(conf)


def _model(make_args, *extra):
    args = make_args(CASCADE_TINY, *extra)
    return args, MeritTask.build_model(args)


def test_top_layers_first_and_never_the_cnn(make_args):
    _, model = _model(make_args)
    schedule = UnfreezeSchedule.from_config({"start": 1, "every": 1, "layers": 1})
    unfreezer = EncoderUnfreezer(model.frontend, schedule)
    assert unfreezer.num_layers == 2

    def trainable():  # the SSL model's parts (a layer by its index)
        return {
            n[len(LAYER) :].split(".")[0] if n.startswith(LAYER) else n.split(".")[4]
            for n, p in model.named_parameters()
            if n.startswith("frontend.") and p.requires_grad
        }

    rest = {"post_extract_proj", "encoder", "layer_norm"}
    counts = []
    for epoch, want in [(1, {"1"}), (2, {"0", "1"}), (3, {"0", "1"} | rest)]:
        counts.append(unfreezer.apply(epoch, 1))
        assert trainable() == want, epoch  # never the CNN (feature_extractor)
    assert counts[0] < counts[1] < counts[2]
    # The heads and the fusion are untouched.
    assert all(p.requires_grad for n, p in model.named_parameters() if "heads." in n)


def test_schedule_beyond_the_encoder_and_a_frozen_frontend_are_errors(make_args):
    _, model = _model(make_args)
    too_many = UnfreezeSchedule.from_config({"schedule": [[1, 3]]})
    with pytest.raises(MeritInputError, match="has 2 layers"):
        EncoderUnfreezer(model.frontend, too_many)
    args = make_args(CASCADE_TINY, "--freeze_param", "frontend.upstream")
    with pytest.raises(MeritInputError, match="drop --freeze_param frontend.upstream"):
        MeritTask.trainer.build_options(args)
    args = make_args(CASCADE_TINY)
    assert MeritTask.trainer.build_options(args).frontend_unfreeze["start"] == 3
    args.distributed = True  # as resolve_distributed_mode sets it for --ngpu 2
    with pytest.raises(MeritInputError, match="single-process for now"):
        MeritTask.trainer.build_options(args)


def test_every_frontend_parameter_is_in_the_optimizer_at_the_ssl_scale(make_args):
    args, model = _model(make_args)
    [optim] = MeritTask.build_optimizers(args, model)
    frontend = {id(p) for n, p in model.named_parameters() if n.startswith("frontend.")}
    [group] = [
        g for g in optim.param_groups if {id(p) for p in g["params"]} == frontend
    ]
    assert group["lr"] == pytest.approx(args.optim_conf["lr"] * args.frontend_lr_scale)


def _train(train_cmd, out, epochs, *extra):
    cmd = train_cmd(CASCADE_TINY, "--ngpu", "0", "--max_epoch", str(epochs), *extra)
    cmd[cmd.index("--output_dir") + 1] = str(out)
    try:
        train_main(cmd)
    except SystemExit as e:
        assert e.code in (None, 0)


@pytest.mark.slow
def test_training_follows_the_schedule_and_resumes_in_step(
    train_cmd, make_args, tmp_path
):
    """Top layer from epoch 2, both from 3: epoch 1 changes no SSL weight, epoch 2
    only the top layer's, epoch 3 the lower one's too, the CNN never; a run
    stopped after epoch 2 and resumed to 3 ends with an uninterrupted one's
    weights."""
    sched = ["--frontend_unfreeze", "start=2", "--frontend_unfreeze", "every=1",
             "--frontend_unfreeze", "layers=1", "--keep_nbest_models", "3"]  # fmt: skip
    straight = tmp_path / "straight"
    _train(train_cmd, straight, 3, *sched)
    init = _model(make_args)[1].state_dict()  # the same tiny WavLM checkpoint
    w = [init] + [
        load_checkpoint(straight / f"{e}epoch.pth", "model") for e in (1, 2, 3)
    ]

    def changed(epoch, prefix):
        names = [n for n in init if n.startswith(prefix)]
        assert names, prefix
        return [n for n in names if not torch.equal(w[epoch - 1][n], w[epoch][n])]

    ssl = "frontend.upstream.upstream.model."
    assert not changed(1, ssl)
    assert changed(2, LAYER + "1.") and set(changed(2, ssl)) <= {
        n for n in init if n.startswith(LAYER + "1.")
    }
    assert changed(3, LAYER + "0.")
    assert not changed(3, ssl + "feature_extractor") and not changed(2, ssl + "post")
    # The stats: trainable SSL values per epoch, growing.
    states = load_checkpoint(straight / "checkpoint.pth", "checkpoint")
    stats = states["reporter"]["stats"]
    counts = [stats[e]["train"]["trainable_frontend_params"] for e in (1, 2, 3)]
    assert counts[0] == 0 < counts[1] < counts[2]

    resumed = tmp_path / "resumed"
    _train(train_cmd, resumed, 2, *sched, "--resume", "true")
    _train(train_cmd, resumed, 3, *sched, "--resume", "true")
    ref = load_checkpoint(straight / "3epoch.pth", "model")
    got = load_checkpoint(resumed / "3epoch.pth", "model")
    for key in ref:
        assert torch.equal(ref[key], got[key]), key
