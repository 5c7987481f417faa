"""ESPnet's trainer with whole-dev-set task metrics for model selection, atomic
checkpoints, a resume that never runs pickled code, and cascade unfreezing of the
SSL encoder."""

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
from espnet2.train.reporter import aggregate
from espnet2.train.trainer import Trainer, TrainerOptions
from espnet2.utils.build_dataclass import build_dataclass

from espnet2_merit.errors import MeritInputError
from espnet2_merit.scoring import selection
from espnet2_merit.train.unfreeze import OPTION as UNFREEZE
from espnet2_merit.train.unfreeze import EncoderUnfreezer, UnfreezeSchedule
from espnet2_merit.utils.checkpoint import PREVIOUS, atomic_torch_save, load_checkpoint

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class MeritTrainerOptions(TrainerOptions):
    frontend_unfreeze: Optional[Dict[str, Any]] = None
    unfreezer: Optional[EncoderUnfreezer] = None  # built by run() from the above


class _Unfreezing:
    """The training iterator, applying the unfreezing schedule before each batch
    (the run's batch count: the reporter's) and reporting the trainable count."""

    def __init__(self, iterator, unfreezer: EncoderUnfreezer, reporter):
        self.iterator, self.unfreezer, self.reporter = iterator, unfreezer, reporter

    def __len__(self) -> int:
        return len(self.iterator)

    def __iter__(self):
        for batch in self.iterator:
            step = self.reporter.get_total_count() + 1
            n = self.unfreezer.apply(self.reporter.get_epoch(), step)
            # The first value of this step: the batch's own stats join it.
            self.reporter.register({"trainable_frontend_params": n})
            yield batch


class MeritTrainer(Trainer):
    """ESPnet's ``Trainer`` plus:

    - after each validation pass, the heads' whole-set statistics (set means of
      per-utterance sums, ``espnet2_merit.scoring.selection``) become
      ``<task>_f1_macro`` / ``<task>_ccc`` over the whole dev set, usable in
      ``best_model_criterion`` (e.g. ``[valid, ser_f1_macro, max]``); the raw
      statistics are dropped from the report;
    - every checkpoint is written atomically, and the previous ``checkpoint.pth``
      is kept as ``checkpoint.prev.pth``: a kill during a save never leaves a
      torn file that ``--resume`` would trust;
    - ``--resume`` loads weights only (no pickled code runs); a corrupt
      ``checkpoint.pth`` is reported and the previous one used;
    - ``frontend_unfreeze``: the SSL encoder's layers become trainable on a
      schedule (``espnet2_merit.train.unfreeze``), applied before every batch;
      the stats report ``trainable_frontend_params`` (mean over the epoch's
      batches).
    """

    @classmethod
    def build_options(cls, args: argparse.Namespace) -> MeritTrainerOptions:
        base = build_dataclass(TrainerOptions, args)
        conf = getattr(args, UNFREEZE, None)
        if conf:
            UnfreezeSchedule.from_config(conf)  # errors before the model is used
            frozen = [t for t in args.freeze_param if "frontend".startswith(t)
                      or t.startswith("frontend")]  # fmt: skip
            if frozen:
                raise MeritInputError(
                    f"--{UNFREEZE} decides which frontend layers train; drop "
                    f"--freeze_param {' '.join(frozen)}"
                )
            if getattr(args, "distributed", False):
                raise MeritInputError(
                    f"--{UNFREEZE} is single-process for now: under "
                    "DistributedDataParallel a parameter frozen when the model is "
                    "wrapped is never reduced, so ranks would diverge once it "
                    "trains; run with --ngpu 1 or without the schedule"
                )
        return MeritTrainerOptions(
            **dataclasses.asdict(base), frontend_unfreeze=conf or None
        )

    @classmethod
    def run(cls, model, *args, trainer_options, **kwargs) -> None:
        if getattr(trainer_options, UNFREEZE, None):
            schedule = UnfreezeSchedule.from_config(trainer_options.frontend_unfreeze)
            trainer_options = dataclasses.replace(
                trainer_options, unfreezer=EncoderUnfreezer(model.frontend, schedule)
            )
        with atomic_torch_save():
            super().run(model, *args, trainer_options=trainer_options, **kwargs)

    @classmethod
    def train_one_epoch(cls, model, iterator, *args, reporter, options, **kwargs):
        if getattr(options, "unfreezer", None) is not None:
            iterator = _Unfreezing(iterator, options.unfreezer, reporter)
        return super().train_one_epoch(
            model, iterator, *args, reporter=reporter, options=options, **kwargs
        )

    @staticmethod
    def resume(
        checkpoint,
        model,
        reporter,
        optimizers,
        schedulers,
        scaler,
        ngpu: int = 0,
        strict: bool = True,
    ):
        checkpoint = Path(checkpoint)
        candidates = [checkpoint, checkpoint.with_name(PREVIOUS)]
        problems = []
        for path in candidates:
            if not path.is_file():
                continue
            try:
                states = load_checkpoint(path, "--resume")
            except MeritInputError as e:
                if "refused" in str(e):
                    raise
                problems.append(str(e))
                logger.warning(f"{e}; trying the previous checkpoint")
                continue
            try:
                model.load_state_dict(states["model"], strict=strict)
            except RuntimeError as e:  # torch lists every mismatched tensor
                detail = str(e).splitlines()[1:3]
                raise MeritInputError(
                    f"--resume: {path} does not fit the model the config builds "
                    f"(was a size or a part changed?): {' '.join(detail).strip()}; "
                    f"delete {path.parent}/checkpoint*.pth to train it from the "
                    "start, or train into another --output_dir (recipe: --tag)"
                ) from None
            reporter.load_state_dict(states["reporter"])
            for optimizer, state in zip(optimizers, states["optimizers"]):
                optimizer.load_state_dict(state)
            for scheduler, state in zip(schedulers, states["schedulers"]):
                if scheduler is not None:
                    scheduler.load_state_dict(state)
            if scaler is not None and states.get("scaler") is not None:
                scaler.load_state_dict(states["scaler"])
            logger.info(
                f"resumed from {path} (epoch {reporter.get_epoch()})"
                + (f" because {checkpoint.name} is corrupt" if problems else "")
            )
            return
        raise MeritInputError(
            "--resume: no readable checkpoint: "
            + "; ".join(problems)
            + " (delete the output dir's checkpoint*.pth to start again)"
        )

    @classmethod
    def validate_one_epoch(cls, model, iterator, reporter, options, distributed_option):
        super().validate_one_epoch(
            model, iterator, reporter, options, distributed_option
        )
        keys = [k for k in reporter.stats if k.startswith(selection.PREFIX)]
        if not keys:
            return
        # reporter.stats: key -> one reported value per batch (SubReporter).
        means = {k: float(aggregate(reporter.stats.pop(k))) for k in keys}
        metrics = selection.set_metrics(means)
        metrics = {k: v for k, v in metrics.items() if np.isfinite(v)}
        if metrics:
            reporter.register(metrics, 1.0)
            reporter.next()
