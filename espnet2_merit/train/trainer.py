"""ESPnet's trainer with whole-dev-set task metrics for model selection, atomic
checkpoints and a resume that never runs pickled code."""

import logging
from pathlib import Path

import numpy as np
from espnet2.train.reporter import aggregate
from espnet2.train.trainer import Trainer

from espnet2_merit.errors import MeritInputError
from espnet2_merit.scoring import selection
from espnet2_merit.utils.checkpoint import PREVIOUS, atomic_torch_save, load_checkpoint

logger = logging.getLogger(__name__)


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
      ``checkpoint.pth`` is reported and the previous one used.
    """

    @classmethod
    def run(cls, *args, **kwargs) -> None:
        with atomic_torch_save():
            super().run(*args, **kwargs)

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
