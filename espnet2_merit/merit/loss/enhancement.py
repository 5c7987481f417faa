"""Speech-enhancement losses: the SE head's output against the clean reference
(both ``SEOutput``s, the reference analysed by the head's own STFT)."""

import torch
from typeguard import typechecked

from espnet2_merit.merit.heads.abs_task_head import SEOutput
from espnet2_merit.merit.heads.targets import WaveformTarget
from espnet2_merit.merit.loss.abs_loss import AbsLoss
from espnet2_merit.utils.masks import valid_mask


def _same_length(pred: SEOutput, ref: SEOutput):
    if not torch.equal(pred.wav_lengths, ref.wav_lengths):
        raise ValueError(
            "speech_ref1 and speech differ in length: "
            f"{ref.wav_lengths.tolist()} vs {pred.wav_lengths.tolist()} samples"
        )


class Log1pL1Loss(AbsLoss):
    """Mean L1 between enhanced and clean log1p magnitudes over valid bins (the
    paper's SE loss)."""

    kind = "waveform"

    @typechecked
    def __init__(self, target: WaveformTarget):
        super().__init__()

    def forward(self, pred: SEOutput, ref: SEOutput) -> torch.Tensor:
        _same_length(pred, ref)
        valid = valid_mask(ref.spec_lengths, ref.spec.size(1))[..., None]
        diff = (pred.spec - ref.spec).abs().masked_fill(~valid, 0.0)
        return diff.sum() / (valid.sum() * ref.spec.size(-1))


class SISNRLoss(AbsLoss):
    """Negative scale-invariant SNR (dB) of the enhanced waveform, averaged over
    utterances; each utterance over its valid samples only."""

    kind = "waveform"
    needs_wav = True

    @typechecked
    def __init__(self, target: WaveformTarget, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, pred: SEOutput, ref: SEOutput) -> torch.Tensor:
        _same_length(pred, ref)
        lengths = ref.wav_lengths
        valid = valid_mask(lengths, ref.wav.size(1)).to(ref.wav.dtype)
        n = lengths.to(ref.wav.dtype)[:, None]
        est = pred.wav.float() * valid
        clean = ref.wav.float() * valid
        est = (est - est.sum(1, keepdim=True) / n) * valid  # zero mean
        clean = (clean - clean.sum(1, keepdim=True) / n) * valid
        scale = (est * clean).sum(1, keepdim=True) / (
            clean.pow(2).sum(1, keepdim=True) + self.eps
        )
        proj = scale * clean
        ratio = proj.pow(2).sum(1) / ((est - proj).pow(2).sum(1) + self.eps)
        return -(10 * torch.log10(ratio + self.eps)).mean()
