"""The joint model: frontend -> fusion -> one head per task."""

import logging
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.frontend.abs_frontend import AbsMultiLayerFrontend
from espnet2_merit.merit.frontend.abs_text_frontend import AbsTextFrontend
from espnet2_merit.merit.fusion.abs_fusion import AbsFusion, FusionOutput
from espnet2_merit.merit.heads.abs_task_head import AbsTaskHead, SEOutput
from espnet2_merit.merit.heads.targets import GENERATED
from espnet2_merit.scoring import routing, selection
from espnet2_merit.utils.masks import valid_mask

logger = logging.getLogger(__name__)


class ESPnetMeritModel(AbsESPnetModel):
    """Noisy speech -> SSL layer stack -> a fused feature per task -> task heads.

    Loss = sum over tasks of weight_t * loss_t + sum over the fusion's auxiliary
    losses (router balancing, z-loss; one per routed task) of their weights * value.

    Semi-supervised batches: loss_t and the task's statistics are computed over
    the utterances that have its target only (``Target.present``; ``-`` in a
    label file), so an unlabelled utterance trains the tasks whose targets it
    has (enhancement, augmentation type, ...) and nothing else. A batch without
    any reports the task's statistics as NaN, which ESPnet's averages skip;
    averages over batches are weighted by the batch size.

    Waveform domains: ``normalize`` maps the noisy waveform x to (x - shift) /
    scale before the frontend. With ``head_domain: normalized`` (the authors'
    release) the heads see that same normalised waveform, a waveform target (the
    clean reference) is mapped by the same affine transform before the loss, and
    enhanced speech is mapped back to the input's scale at inference; with
    ``raw`` the heads see the waveform as read. Without ``normalize`` the two are
    the same.
    """

    @typechecked
    def __init__(
        self,
        frontend: AbsMultiLayerFrontend,
        fusion: AbsFusion,
        heads: Dict[str, AbsTaskHead],
        task_weights: Dict[str, float],
        normalize: Optional[AbsNormalize] = None,
        aux_loss_weights: Optional[Dict[str, Union[float, Dict[str, float]]]] = None,
        head_domain: str = "normalized",
        text_frontend: Optional[AbsTextFrontend] = None,
    ):
        """Assemble the model (the task builds the parts from the config).

        Args:
            frontend: Waveform -> (B, T, L, D) layer stack.
            fusion: Layer stack -> one feature per task; one router per task.
            heads: Task name -> its head, in the config's order.
            task_weights: Task name -> weight of its loss.
            normalize: Waveform normalisation before the frontend (e.g. global_mvn
                with training-set statistics), an affine map per utterance.
            aux_loss_weights: The fusion's auxiliary loss name -> weight
                (``model_conf.aux_loss_weights``): one number for every routed
                task's term, or task -> weight. A name the fusion does not
                compute is an error, a task it does not route is ignored with a
                warning; an unweighted loss is reported only.
            head_domain: "normalized" (the heads and waveform targets in the
                normalised domain) or "raw" (the heads see the input as read).
            text_frontend: Transcript tokens -> (B, S, L, D) layer stack, given
                to the heads that read text (``uses_text``).
        """
        super().__init__()
        if not heads:
            raise MeritInputError("the model needs at least one task")
        if tuple(heads) != fusion.tasks:
            raise ValueError(f"tasks {list(heads)} but fusion routes {fusion.tasks}")
        if set(task_weights) != set(heads):
            raise ValueError(f"task weights {task_weights} for tasks {list(heads)}")
        if head_domain not in ("normalized", "raw"):
            raise MeritInputError(
                f"model_conf.head_domain='{head_domain}': use 'normalized' or 'raw'"
            )
        if (
            head_domain == "normalized"
            and normalize is not None
            and not hasattr(normalize, "affine")
        ):
            raise MeritInputError(
                f"model_conf.head_domain=normalized needs an affine normalize, "
                f"{type(normalize).__name__} is not; use head_domain=raw"
            )
        self.frontend, self.normalize, self.fusion = frontend, normalize, fusion
        self.heads = torch.nn.ModuleDict(heads)
        self.task_weights = dict(task_weights)
        self.aux_loss_weights = self._per_task_weights(aux_loss_weights or {})
        self.head_domain = head_domain
        self.text_frontend = text_frontend

    def _text_inputs(
        self, head: AbsTaskHead, text: Optional[Dict[str, torch.Tensor]]
    ) -> Dict[str, torch.Tensor]:
        """The keyword arguments of ``head`` for the batch's transcripts."""
        return text if head.uses_text else {}

    def encode_text(
        self, text: Optional[torch.Tensor], text_lengths: Optional[torch.Tensor]
    ) -> Optional[Dict[str, torch.Tensor]]:
        """(B, S) token ids -> the text heads' inputs ``text_feats`` (B, S, L, D)
        and ``text_lengths`` (B,); None without a text frontend."""
        if self.text_frontend is None:
            return None
        if text is None or text_lengths is None:
            raise MeritInputError(
                "the model has a text_frontend but the batch has no 'text': add "
                "<dir>/text,text,text to the data options"
            )
        feats, lengths = self.text_frontend(text, text_lengths)
        return {"text_feats": feats, "text_lengths": lengths}

    def _per_task_weights(
        self, weights: Dict[str, Union[float, Dict[str, float]]]
    ) -> Dict[str, Dict[str, float]]:
        """``model_conf.aux_loss_weights`` -> loss name -> task -> weight."""
        fusion = self.fusion
        unknown = sorted(set(weights) - set(fusion.aux_losses()))
        if unknown:
            raise MeritInputError(
                f"model_conf.aux_loss_weights: {unknown} are not losses of fusion "
                f"{type(fusion).__name__} (it has {list(fusion.aux_losses()) or 'none'})"
            )
        out = {}
        for name in fusion.aux_losses():
            if name not in weights:
                logger.info(f"fusion loss {name} is reported but has no weight")
                continue
            w = weights[name]
            if not isinstance(w, dict):
                w = {t: float(w) for t in fusion.tasks}
            # A task the config declares can be dropped by an override
            # (--tasks se=null): its weight is left out, with a warning that
            # also shows a misspelt name.
            unused = sorted(set(w) - set(fusion.tasks))
            if unused:
                logger.warning(
                    f"model_conf.aux_loss_weights.{name}: {unused} are not routed "
                    f"tasks (the fusion routes {list(fusion.tasks)}): ignored"
                )
            out[name] = {t: float(v) for t, v in w.items() if t in fusion.tasks}
        return out

    def output_tasks(self, enhance: bool = True) -> list:
        """The tasks that give inference outputs, in config order: not those on
        data only training makes (``--augmentation``), nor waveform tasks
        unless ``enhance``."""
        return [
            name
            for name, head in self.heads.items()
            if head.target.name not in GENERATED
            and (enhance or head.target_kind != "waveform")
        ]

    def normalized(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, Optional[Tuple[torch.Tensor, torch.Tensor]]]:
        """(B, N) waveforms -> the frontend's input and the (shift, scale) of
        ``normalize``, each (B, 1) (None without ``normalize``)."""
        if self.normalize is None:
            return speech, None
        if not hasattr(self.normalize, "affine"):
            x, _ = self.normalize(speech.unsqueeze(-1), speech_lengths)
            return x.squeeze(-1), None
        shift, scale = (
            a.reshape(-1, 1).expand(speech.size(0), 1)
            for a in self.normalize.affine(speech.unsqueeze(-1), speech_lengths)
        )
        x = (speech - shift) / scale * valid_mask(speech_lengths, speech.size(1))
        return x, (shift, scale)

    def _to_heads(self, wav, lengths, affine) -> torch.Tensor:
        """A (B, N) waveform target in the heads' domain (padding zero): the
        same affine map as the noisy input's."""
        if self.head_domain == "raw" or affine is None:
            return wav
        shift, scale = affine
        return (wav - shift) / scale * valid_mask(lengths, wav.size(1))

    def _from_heads(self, wav, lengths, affine) -> torch.Tensor:
        """Inverse of ``_to_heads``: enhanced speech at the input's scale."""
        if self.head_domain == "raw" or affine is None:
            return wav
        shift, scale = affine
        return (wav * scale + shift) * valid_mask(lengths, wav.size(1))

    def _batch_to_heads(self, batch: Dict[str, torch.Tensor], affine):
        """The batch with every waveform target mapped into the heads' domain."""
        batch = dict(batch)
        for head in self.heads.values():
            name = head.target.name
            if head.target.kind == "waveform" and name in batch:
                lens = batch[f"{name}_lengths"]
                batch[name] = self._to_heads(batch[name], lens, affine)
        return batch

    def encode(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        tasks: Optional[Sequence[str]] = None,
    ) -> Tuple[FusionOutput, torch.Tensor]:
        """(B, N) normalised waveforms -> fused features of ``tasks`` (default
        all) and their (B,) frame lengths."""
        feats, feats_lengths = self.frontend(x, lengths)
        return self.fusion(feats, feats_lengths, tasks), feats_lengths

    def inference(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        tasks: Optional[Sequence[str]] = None,
        text: Optional[torch.Tensor] = None,
        text_lengths: Optional[torch.Tensor] = None,
    ) -> Tuple[FusionOutput, torch.Tensor, Dict[str, Any]]:
        """Predictions of ``tasks`` (default all) for (B, N) noisy waveforms (and
        (B, S) transcript tokens with a text frontend), no losses; only those
        tasks' experts and heads run (every task is routed).

        Returns:
            fused features (with per-frame routes), their (B,) lengths, and task
            -> its head's ``predict`` output.
        """
        tasks = list(self.heads) if tasks is None else list(tasks)
        x, affine = self.normalized(speech, speech_lengths)
        fused, flens = self.encode(x, speech_lengths, tasks)
        head_in = x if self.head_domain == "normalized" else speech
        text_in = self.encode_text(text, text_lengths)
        preds = {}
        for t in tasks:
            pred = self.heads[t].predict(
                fused.features[t],
                flens,
                head_in,
                speech_lengths,
                **self._text_inputs(self.heads[t], text_in),
            )
            if isinstance(pred, SEOutput) and pred.wav is not None:
                pred.wav = self._from_heads(pred.wav, pred.wav_lengths, affine)
            preds[t] = pred
        return fused, flens, preds

    def forward(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, **batch
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """Joint loss of a batch.

        Args:
            speech: (B, N) noisy waveforms.
            speech_lengths: (B,).
            batch: Each task's target with its lengths (``speech_ref1``,
                ``emotion``, ``emotion_attr``, ...), ``text`` (B, S) token ids
                and ``text_lengths`` with a text frontend; other data are
                ignored.

        Returns:
            loss, stats (``<task>_loss``, each head's statistics as
            ``<task>_<name>``, the fusion's losses per task as
            ``<task>_<loss>``, expert-usage fractions ``<task>_expert<i>`` and
            their normalised entropy ``<task>_usage_entropy`` (per batch; in
            eval mode with a clean reference, over the whole set with the other
            routing statistics); in eval mode also the whole-set statistics of
            ``espnet2_merit.scoring.selection``), batch size as weight.
        """
        x, affine = self.normalized(speech, speech_lengths)
        fused, feats_lengths = self.encode(x, speech_lengths)
        head_in = x if self.head_domain == "normalized" else speech
        clean = self._clean(batch)
        text_in = self.encode_text(batch.get("text"), batch.get("text_lengths"))
        batch = self._batch_to_heads(batch, affine)
        stats: Dict[str, torch.Tensor] = {}
        loss = speech.new_zeros((), dtype=torch.float32)
        for task, head in self.heads.items():
            pred = head(
                fused.features[task],
                feats_lengths,
                head_in,
                speech_lengths,
                **self._text_inputs(head, text_in),
            )
            ref = head.reference(batch)
            keep = head.target.present(batch).to(speech.device)
            if not bool(keep.all()):  # unlabelled utterances: not in this task
                pred, ref = _rows(pred, keep), _rows(ref, keep)
            if bool(keep.any()):
                task_loss = head.loss(pred, ref)
                loss = loss + self.task_weights[task] * task_loss
            else:  # reported as missing; ESPnet leaves NaN out of its averages
                task_loss = speech.new_full((), float("nan"), dtype=torch.float32)
            stats[f"{task}_loss"] = task_loss.detach()
            with torch.no_grad():
                for name, value in head.stats(pred, ref).items():
                    stats[f"{task}_{name}"] = value.detach()
                if not self.training:
                    stats.update(selection.pack(task, head.sufficient_stats(pred, ref)))
        for name, per_task in fused.losses.items():
            weights = self.aux_loss_weights.get(name, {})
            for task, value in per_task.items():
                loss = loss + weights.get(task, 0.0) * value
                stats[f"{task}_{name}"] = value.detach()
        whole_set = not self.training and clean is not None and bool(fused.routes)
        for task, usage in fused.usage.items():
            for i, u in enumerate(usage):
                stats[f"{task}_expert{i}"] = u.detach()
            if not whole_set:  # else the whole-set values of the same names
                stats[f"{task}_usage_entropy"] = routing.usage_entropy(usage.detach())
                if task in fused.routes:
                    experts = fused.routes[task][0]
                    count = (experts >= 0).sum(-1)[experts[..., 0] >= 0]
                    stats[f"{task}_mean_experts"] = count.float().mean()
        if whole_set:
            stats.update(self._routing_stats(fused, speech, clean))
        stats["loss"] = loss.detach()
        return force_gatherable((loss, stats, speech.size(0)), loss.device)

    def _clean(self, batch: Dict[str, torch.Tensor]) -> Optional[torch.Tensor]:
        """(B, N) clean reference of the first waveform task, as read."""
        for head in self.heads.values():
            if head.target.kind == "waveform" and head.target.name in batch:
                return batch[head.target.name]
        return None

    def _routing_stats(self, fused: FusionOutput, speech, clean):
        """Whole-set routing counts per routed task (speech- vs noise-dominated
        frames, ``espnet2_merit.scoring.routing``)."""
        out = {}
        for task, (experts, _) in fused.routes.items():
            first = experts[..., 0]
            dominated = routing.speech_dominated(
                speech, clean, self.frontend.frame_shift(), first.size(1)
            )
            counts = routing.routing_counts(
                first, dominated, self.fusion.num_experts, (experts >= 0).sum(-1)
            )
            out.update(selection.pack(task, {"routing": counts}))
        return out

    def collect_feats(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs
    ) -> Dict[str, torch.Tensor]:
        """Waveform samples as one-dimensional "features", so that ``--collect_stats``
        gives the training-set mean and variance used by ``normalize: global_mvn``."""
        return {"feats": speech.unsqueeze(-1), "feats_lengths": speech_lengths}


def _rows(x: Any, keep: torch.Tensor) -> Any:
    """The rows ``keep`` (B,) of a head's prediction or reference: a (B, ...)
    tensor or a tuple of them."""
    if isinstance(x, torch.Tensor):
        return x[keep]
    if isinstance(x, tuple):
        rows = [_rows(v, keep) for v in x]
        return type(x)(*rows) if hasattr(x, "_fields") else tuple(rows)
    raise TypeError(
        f"a task with unlabelled utterances needs tensor predictions and "
        f"references, not {type(x).__name__}"
    )
