"""Frame-wise reconstruction of the un-augmented input's log-mel spectrum: the
MTL-AUG auxiliary task (Latif et al., IEEE Trans. Affective Computing 2023)."""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from typeguard import typechecked

from espnet2_merit.merit.frontend.fbank import FbankFrontend
from espnet2_merit.merit.heads.abs_task_head import AbsTaskHead
from espnet2_merit.merit.heads.targets import AUG_SOURCE, SourceTarget
from espnet2_merit.merit.loss.abs_loss import AbsLoss
from espnet2_merit.utils.masks import valid_mask


class SpecOutput(NamedTuple):
    """Log-mel frames and their number per utterance."""

    spec: torch.Tensor  # (B, T, M), zero past the lengths
    lengths: torch.Tensor  # (B,)


class ReconstructionHead(AbsTaskHead):
    """Task feature -> the log-mel spectrum of the input before augmentation,
    frame by frame (Linear -> ReLU -> dropout -> Linear per frame).

    The reference is the log-mel of ``speech_unaugmented`` at the feature frame
    rate (hop = the frontend's frame shift), linearly interpolated in time to
    each utterance's feature frame count: after a speed change the augmented
    input has fewer or more frames than its source, and frame t of the
    reconstruction is compared with the source's content at the same relative
    time. Training only (inference gives no output for it).
    """

    target_kind = "source"
    default_target = AUG_SOURCE
    default_loss = "spec_l1"

    @typechecked
    def __init__(
        self,
        input_size: int,
        frame_shift: int,
        target: SourceTarget,
        loss: AbsLoss,
        hidden_size: int = 256,
        n_mels: int = 40,
        dropout: float = 0.1,
        fs: int = 16000,
    ):
        """Build the head.

        Args:
            input_size: Size D of the task's fused feature.
            frame_shift: Input samples per feature frame (the log-mel hop).
            target: The source waveform target.
            loss: A ``source`` loss (``spec_l1``).
            hidden_size: Hidden size of the frame-wise decoder.
            n_mels: Mel bands reconstructed.
            dropout: Dropout before the output layer.
            fs: Sampling rate of the audio.
        """
        super().__init__(target, loss)
        self.decoder = torch.nn.Sequential(
            torch.nn.Linear(input_size, hidden_size),
            torch.nn.ReLU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden_size, n_mels),
        )
        window = min(2 * frame_shift, 512)
        self.logmel = FbankFrontend(fs, 512, window, frame_shift, n_mels)

    def forward(self, feats, feats_lengths, speech=None, speech_lengths=None):
        """(B, T, D) -> ``SpecOutput`` (B, T, n_mels)."""
        spec = self.decoder(feats)
        mask = valid_mask(feats_lengths, feats.size(1))[..., None]
        return SpecOutput(spec * mask, feats_lengths)

    def predict(self, feats, feats_lengths, speech=None, speech_lengths=None):
        return self(feats, feats_lengths)

    def reference(self, batch) -> SpecOutput:
        wav, lengths = self.target.from_batch(batch)
        with torch.no_grad():
            spec, spec_lengths = self.logmel(wav, lengths)
        return SpecOutput(spec[:, :, 0], spec_lengths)

    def loss(self, pred: SpecOutput, ref: SpecOutput) -> torch.Tensor:
        return self.loss_fn(pred, aligned(ref, pred.lengths, pred.spec.size(1)))


def aligned(ref: SpecOutput, lengths: torch.Tensor, frames: int) -> SpecOutput:
    """Each utterance of ``ref`` linearly interpolated in time to ``lengths``
    frames (of ``frames`` padded): (B, T', M) -> (B, frames, M)."""
    out = ref.spec.new_zeros(ref.spec.size(0), frames, ref.spec.size(-1))
    for b, (n_ref, n) in enumerate(zip(ref.lengths.tolist(), lengths.tolist())):
        if n == 0 or n_ref == 0:
            continue
        seq = ref.spec[b, :n_ref].t()[None]  # (1, M, T')
        seq = F.interpolate(seq, size=n, mode="linear", align_corners=False)
        out[b, :n] = seq[0].t()
    return SpecOutput(out, lengths)
