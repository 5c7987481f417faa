"""ESPnet's trainer with full-dev-set SER metrics for model selection."""

import numpy as np
from espnet2.train.reporter import aggregate
from espnet2.train.trainer import Trainer

from espnet2_merit.merit.espnet_model import SUFFICIENT_PREFIX, full_set_metrics


class MeritTrainer(Trainer):
    """After each validation pass, turn the model's ``suff_*`` statistics (set
    means of per-utterance sums, see ``espnet_model.sufficient_stats``) into
    ``f1_macro`` / ``ccc`` over the whole dev set, usable in
    ``best_model_criterion`` (e.g. ``[valid, f1_macro, max]``). The raw statistics
    are dropped from the report, so logs and plots show only the metrics."""

    @classmethod
    def validate_one_epoch(cls, model, iterator, reporter, options, distributed_option):
        super().validate_one_epoch(
            model, iterator, reporter, options, distributed_option
        )
        keys = [k for k in reporter.stats if k.startswith(SUFFICIENT_PREFIX)]
        if not keys:
            return
        # reporter.stats: key -> one reported value per batch (SubReporter).
        means = {k: float(aggregate(reporter.stats.pop(k))) for k in keys}
        metrics = full_set_metrics(means)
        if metrics and all(np.isfinite(v) for v in metrics.values()):
            reporter.register(metrics, 1.0)
            reporter.next()
