"""The joint model: frontend -> fusion -> one head per task."""

import logging
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.frontend.abs_frontend import AbsMultiLayerFrontend
from espnet2_merit.merit.fusion.abs_fusion import AbsFusion, FusionOutput
from espnet2_merit.merit.heads.abs_task_head import AbsTaskHead
from espnet2_merit.scoring import selection

logger = logging.getLogger(__name__)


class ESPnetMeritModel(AbsESPnetModel):
    """Noisy speech -> SSL layer stack -> a fused feature per task -> task heads.

    Loss = sum over tasks of weight_t * loss_t + sum over the fusion's auxiliary
    losses (router balancing, z-loss) of their weights * value.
    """

    @typechecked
    def __init__(
        self,
        frontend: AbsMultiLayerFrontend,
        fusion: AbsFusion,
        heads: Dict[str, AbsTaskHead],
        task_weights: Dict[str, float],
        normalize: Optional[AbsNormalize] = None,
        aux_loss_weights: Optional[Dict[str, float]] = None,
    ):
        """Assemble the model (the task builds the parts from the config).

        Args:
            frontend: Waveform -> (B, T, L, D) layer stack.
            fusion: Layer stack -> one feature per task; one router per task.
            heads: Task name -> its head, in the config's order.
            task_weights: Task name -> weight of its loss.
            normalize: Waveform normalisation before the frontend (e.g. global_mvn
                with training-set statistics); the heads see the raw waveform.
            aux_loss_weights: The fusion's auxiliary loss name -> weight
                (``model_conf.aux_loss_weights``); a name the fusion does not
                compute is an error, an unweighted one is reported only.
        """
        super().__init__()
        if not heads:
            raise MeritInputError("the model needs at least one task")
        if tuple(heads) != fusion.tasks:
            raise ValueError(f"tasks {list(heads)} but fusion routes {fusion.tasks}")
        if set(task_weights) != set(heads):
            raise ValueError(f"task weights {task_weights} for tasks {list(heads)}")
        aux_loss_weights = dict(aux_loss_weights or {})
        unknown = sorted(set(aux_loss_weights) - set(fusion.aux_losses()))
        if unknown:
            raise MeritInputError(
                f"model_conf.aux_loss_weights: {unknown} are not losses of fusion "
                f"{type(fusion).__name__} (it has {list(fusion.aux_losses()) or 'none'})"
            )
        for name in fusion.aux_losses():
            if name not in aux_loss_weights:
                logger.info(f"fusion loss {name} is reported but has no weight")
        self.frontend, self.normalize, self.fusion = frontend, normalize, fusion
        self.heads = torch.nn.ModuleDict(heads)
        self.task_weights = dict(task_weights)
        self.aux_loss_weights = aux_loss_weights

    def encode(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        tasks: Optional[Sequence[str]] = None,
    ) -> Tuple[FusionOutput, torch.Tensor]:
        """(B, N) waveforms -> fused features of ``tasks`` (default all) and their
        (B,) lengths."""
        x = speech
        if self.normalize is not None:
            x, _ = self.normalize(x.unsqueeze(-1), speech_lengths)
            x = x.squeeze(-1)
        feats, feats_lengths = self.frontend(x, speech_lengths)
        return self.fusion(feats, feats_lengths, tasks), feats_lengths

    def inference(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        tasks: Optional[Sequence[str]] = None,
    ) -> Tuple[FusionOutput, torch.Tensor, Dict[str, Any]]:
        """Predictions of ``tasks`` (default all) for (B, N) noisy waveforms, no
        losses; only those tasks' experts and heads run (every task is routed).

        Returns:
            fused features (with per-frame routes), their (B,) lengths, and task
            -> its head's ``predict`` output.
        """
        tasks = list(self.heads) if tasks is None else list(tasks)
        fused, flens = self.encode(speech, speech_lengths, tasks)
        preds = {
            t: self.heads[t].predict(fused.features[t], flens, speech, speech_lengths)
            for t in tasks
        }
        return fused, flens, preds

    def forward(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, **batch
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """Joint loss of a batch.

        Args:
            speech: (B, N) noisy waveforms.
            speech_lengths: (B,).
            batch: Each task's target with its lengths (``speech_ref1``,
                ``emotion``, ``emotion_attr``, ...); other data are ignored.

        Returns:
            loss, stats (``<task>_loss``, each head's statistics as
            ``<task>_<name>``, the fusion's losses, expert-usage fractions
            ``<task>_expert<i>``; in eval mode also the whole-set statistics of
            ``espnet2_merit.scoring.selection``), batch size as weight.
        """
        fused, feats_lengths = self.encode(speech, speech_lengths)
        stats: Dict[str, torch.Tensor] = {}
        loss = speech.new_zeros((), dtype=torch.float32)
        for task, head in self.heads.items():
            pred = head(fused.features[task], feats_lengths, speech, speech_lengths)
            ref = head.reference(batch)
            task_loss = head.loss(pred, ref)
            loss = loss + self.task_weights[task] * task_loss
            stats[f"{task}_loss"] = task_loss.detach()
            with torch.no_grad():
                for name, value in head.stats(pred, ref).items():
                    stats[f"{task}_{name}"] = value.detach()
                if not self.training:
                    stats.update(selection.pack(task, head.sufficient_stats(pred, ref)))
        for name, value in fused.losses.items():
            if name in self.aux_loss_weights:
                loss = loss + self.aux_loss_weights[name] * value
            stats[name] = value.detach()
        for task, usage in fused.usage.items():
            for i, u in enumerate(usage):
                stats[f"{task}_expert{i}"] = u.detach()
        stats["loss"] = loss.detach()
        return force_gatherable((loss, stats, speech.size(0)), loss.device)

    def collect_feats(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs
    ) -> Dict[str, torch.Tensor]:
        """Waveform samples as one-dimensional "features", so that ``--collect_stats``
        gives the training-set mean and variance used by ``normalize: global_mvn``."""
        return {"feats": speech.unsqueeze(-1), "feats_lengths": speech_lengths}
