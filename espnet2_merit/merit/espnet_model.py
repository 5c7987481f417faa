"""The joint SE + SER model: frontend -> fusion -> SE head and SER head."""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel
from typeguard import typechecked

from espnet2_merit.merit.frontend.abs_frontend import AbsMultiLayerFrontend
from espnet2_merit.merit.fusion.abs_fusion import AbsFusion, FusionOutput
from espnet2_merit.merit.loss.abs_loss import AbsSERLoss
from espnet2_merit.merit.se_head.abs_se_head import AbsSEHead, SEOutput
from espnet2_merit.merit.ser_head.abs_ser_head import AbsSERHead


class ESPnetMeritModel(AbsESPnetModel):
    """Noisy speech -> SSL layer stack -> per-task fused features -> SE and SER.

    Loss = se_weight * SE loss + ser_weight * SER loss
           + balance_weight * router balancing loss + z_loss_weight * router z-loss.
    Either head may be absent (SER-only or SE-only systems).
    """

    @typechecked
    def __init__(
        self,
        frontend: AbsMultiLayerFrontend,
        fusion: AbsFusion,
        se_head: Optional[AbsSEHead],
        ser_head: Optional[AbsSERHead],
        ser_loss: Optional[AbsSERLoss],
        normalize: Optional[AbsNormalize] = None,
        emotion_list: Optional[List[str]] = None,
        se_weight: float = 1.0,
        ser_weight: float = 1.0,
        balance_weight: float = 0.01,
        z_loss_weight: float = 0.0,
    ):
        """Assemble the model (the task builds the parts from the config).

        Args:
            frontend: Waveform -> (B, T, L, D) layer stack.
            fusion: Layer stack -> one feature per task.
            se_head: Enhancement head, or None for an SER-only system.
            ser_head: Emotion head, or None for an SE-only system.
            ser_loss: Loss of the SER head's outputs.
            normalize: Waveform normalisation before the frontend (e.g. global_mvn
                with training-set statistics); the SE head sees the raw waveform.
            emotion_list: Class names in output order.
            se_weight, ser_weight: Task loss weights.
            balance_weight: Weight of the Switch load-balancing loss.
            z_loss_weight: Weight of the router z-loss.
        """
        super().__init__()
        if se_head is None and ser_head is None:
            raise ValueError("the model needs an se_head, a ser_head, or both")
        if (ser_head is None) != (ser_loss is None):
            raise ValueError("ser_head and ser_loss must be given together")
        if ser_head is not None and ser_head.target != ser_loss.target:
            raise ValueError(
                f"ser_loss {type(ser_loss).__name__} trains on '{ser_loss.target}' "
                f"but ser_head {type(ser_head).__name__} predicts '{ser_head.target}'"
            )
        self.frontend, self.normalize, self.fusion = frontend, normalize, fusion
        self.se_head, self.ser_head, self.ser_loss = se_head, ser_head, ser_loss
        self.emotion_list = emotion_list
        self.se_weight, self.ser_weight = se_weight, ser_weight
        self.balance_weight, self.z_loss_weight = balance_weight, z_loss_weight

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
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, enhance: bool = True
    ) -> Tuple[FusionOutput, torch.Tensor, Optional[torch.Tensor], Optional[SEOutput]]:
        """Every output of (B, N) noisy waveforms, no losses.

        Returns:
            fused features (with per-frame routes), their (B,) lengths, (B, C)
            class probabilities or (B, A) attributes (None without an SER head),
            and the SE head's output with (B, N) waveforms (None without an SE
            head or with ``enhance=False``).
        """
        enhance = enhance and self.se_head is not None
        tasks = [t for t in self.fusion.tasks if t == "ser" or enhance]
        fused, flens = self.encode(speech, speech_lengths, tasks)
        ser = se = None
        if self.ser_head is not None:
            ser = self.ser_head(fused.features["ser"], flens).float()
            if self.ser_head.target == "emotion":
                ser = ser.softmax(-1)
        if enhance:
            se = self.se_head(speech, speech_lengths, fused.features["se"], flens, True)
        return fused, flens, ser, se

    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        speech_ref1: Optional[torch.Tensor] = None,
        speech_ref1_lengths: Optional[torch.Tensor] = None,
        emotion: Optional[torch.Tensor] = None,
        emotion_lengths: Optional[torch.Tensor] = None,
        emotion_attr: Optional[torch.Tensor] = None,
        emotion_attr_lengths: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """Joint loss of a batch.

        Args:
            speech: (B, N) noisy waveforms.
            speech_lengths: (B,).
            speech_ref1: (B, N) clean waveforms (needed when the SE head is on).
            emotion: (B, 1) class indices (classification heads).
            emotion_attr: (B, A) attribute values (regression heads).

        Returns:
            loss, stats (every loss term, SER accuracy, expert-usage fractions per
            task as ``{task}_expert{i}``; in eval mode also the ``suff_*``
            statistics of ``sufficient_stats``), batch size as weight.
        """
        batch_size = speech.size(0)
        fused, feats_lengths = self.encode(speech, speech_lengths)
        stats: Dict[str, torch.Tensor] = {}
        loss = speech.new_zeros((), dtype=torch.float32)

        if self.se_head is not None:
            if speech_ref1 is None:
                raise ValueError("the SE head is on but the batch has no speech_ref1")
            se = self.se_head(
                speech, speech_lengths, fused.features["se"], feats_lengths, False
            )
            se_loss = self.se_head.loss(se, speech_ref1, speech_ref1_lengths)
            loss = loss + self.se_weight * se_loss
            stats["se_loss"] = se_loss.detach()

        if self.ser_head is not None:
            target = emotion if self.ser_head.target == "emotion" else emotion_attr
            if target is None:
                raise ValueError(
                    f"the SER head is on but the batch has no '{self.ser_head.target}'"
                )
            pred = self.ser_head(fused.features["ser"], feats_lengths)
            if self.ser_head.target == "emotion":
                target = target[:, 0]
                stats["acc"] = (pred.argmax(-1) == target).float().mean().detach()
            if not self.training:
                stats.update(sufficient_stats(pred.detach(), target, self.ser_head))
            ser_loss = self.ser_loss(pred, target)
            loss = loss + self.ser_weight * ser_loss
            stats["ser_loss"] = ser_loss.detach()

        weights = {"balance_loss": self.balance_weight, "z_loss": self.z_loss_weight}
        for name, value in fused.losses.items():
            loss = loss + weights[name] * value
            stats[name] = value.detach()
        for task, usage in fused.usage.items():
            for i, u in enumerate(usage):
                stats[f"{task}_expert{i}"] = u.detach()
        stats["loss"] = loss.detach()
        loss, stats, weight = force_gatherable((loss, stats, batch_size), loss.device)
        return loss, stats, weight

    def collect_feats(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs
    ) -> Dict[str, torch.Tensor]:
        """Waveform samples as one-dimensional "features", so that ``--collect_stats``
        gives the training-set mean and variance used by ``normalize: global_mvn``."""
        return {"feats": speech.unsqueeze(-1), "feats_lengths": speech_lengths}


# Full-set SER metrics for model selection. F1-macro and CCC are not means of
# per-batch values, but they are functions of sums over utterances. Each batch
# reports those sums divided by its size; ESPnet's batch-size-weighted averaging
# (across GPUs too) then yields sum / N over the whole set, and
# ``full_set_metrics`` turns them into the exact set-level metric.
SUFFICIENT_PREFIX = "suff_"


def sufficient_stats(
    pred: torch.Tensor, target: torch.Tensor, head: torch.nn.Module
) -> Dict[str, torch.Tensor]:
    """Per-batch sums / B: (B, C) logits + (B,) classes -> true positives, hypothesis
    and reference counts per class; (B, A) predictions + (B, A) targets -> first and
    second moments per attribute."""
    bsz = pred.size(0)
    out = {}
    if head.target == "emotion":
        hyp = pred.argmax(-1)
        for c in range(pred.size(-1)):
            h, r = hyp == c, target == c
            out[f"{SUFFICIENT_PREFIX}tp{c}"] = (h & r).sum() / bsz
            out[f"{SUFFICIENT_PREFIX}hyp{c}"] = h.sum() / bsz
            out[f"{SUFFICIENT_PREFIX}ref{c}"] = r.sum() / bsz
    else:
        x, y = pred.float(), target.float()
        moments = {"x": x, "y": y, "xx": x * x, "yy": y * y, "xy": x * y}
        for name, m in moments.items():
            for a, total in enumerate(m.sum(0)):
                out[f"{SUFFICIENT_PREFIX}{name}{a}"] = total / bsz
    return out


def full_set_metrics(means: Dict[str, float]) -> Dict[str, float]:
    """``suff_*`` set means -> ``f1_macro`` (classes with neither hypothesis nor
    reference count 0, as scikit-learn's ``zero_division=0``) or ``ccc`` (mean
    over attributes)."""
    p = SUFFICIENT_PREFIX
    if f"{p}tp0" in means:
        num = sum(1 for k in means if k.startswith(f"{p}tp"))
        f1 = []
        for c in range(num):
            denom = means[f"{p}hyp{c}"] + means[f"{p}ref{c}"]
            f1.append(2 * means[f"{p}tp{c}"] / denom if denom > 0 else 0.0)
        return {"f1_macro": sum(f1) / num}
    if f"{p}x0" in means:
        num = sum(1 for k in means if k.startswith(f"{p}xy"))
        ccc = []
        for a in range(num):
            mx, my = means[f"{p}x{a}"], means[f"{p}y{a}"]
            vx, vy = means[f"{p}xx{a}"] - mx * mx, means[f"{p}yy{a}"] - my * my
            cov = means[f"{p}xy{a}"] - mx * my
            ccc.append(2 * cov / (vx + vy + (mx - my) ** 2 + 1e-12))
        return {"ccc": sum(ccc) / num}
    return {}
