"""BLSTM mask estimator on the log1p magnitude, conditioned on SSL features."""

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from typeguard import typechecked

from espnet2_merit.layers.stft import Stft
from espnet2_merit.merit.heads.abs_task_head import AbsTaskHead, SEOutput
from espnet2_merit.merit.heads.targets import WaveformTarget
from espnet2_merit.merit.loss.abs_loss import AbsLoss
from espnet2_merit.utils.masks import valid_mask


class BLSTMMaskSEHead(AbsTaskHead):
    """log1p|STFT| ++ upsampled feature -> Linear -> BLSTM -> sigmoid mask.

    The enhanced log1p magnitude is mask * noisy log1p magnitude; the waveform comes
    from the iSTFT with the noisy phase. Each BLSTM direction's output is summed, as
    in the paper. The clean reference is analysed with the same STFT
    (``reference``), so a spectral loss compares like with like.
    """

    target_kind = "waveform"
    default_target = "speech_ref1"
    default_loss = "log1p_l1"

    @typechecked
    def __init__(
        self,
        input_size: int,
        frame_shift: int,
        target: WaveformTarget,
        loss: AbsLoss,
        n_fft: int = 400,
        win_length: int = 400,
        hop_length: int = 160,
        window: str = "hamming",
        hidden_size: int = 256,
        num_layers: int = 2,
        dropout: float = 0.0,
        input_gain: float = 1.0,
    ):
        """Build the head.

        Args:
            input_size: Size of the fused SE feature.
            frame_shift: Samples per feature frame (the frontend's frame shift);
                must be a multiple of ``hop_length``: each feature frame is
                repeated ``frame_shift // hop_length`` times to reach the STFT
                frame rate.
            target: The clean reference it learns (``speech_ref1``).
            loss: An SE loss (``log1p_l1``, ``si_snr``).
            n_fft, win_length, hop_length, window: STFT settings.
            hidden_size: BLSTM hidden size (per direction) and input projection size.
            num_layers: BLSTM layers.
            dropout: Dropout between BLSTM layers.
            input_gain: Factor the head applies to its input waveform and to the
                clean reference before the STFT (the enhanced waveform is divided
                by it again). log1p is near linear for magnitudes << 1, so on raw
                audio (std ~0.06) it compresses nothing and the loss under-weights
                the weak bins; a gain near 1/std puts the spectra on the scale of
                z-normalised audio, the authors' domain.
        """
        super().__init__(target, loss)
        if not input_gain > 0:
            raise ValueError(f"head_conf.input_gain={input_gain}: must be > 0")
        self.input_gain = input_gain
        if frame_shift % hop_length != 0:
            raise ValueError(
                f"feature frame shift {frame_shift} is not a multiple of the STFT "
                f"hop {hop_length} (head_conf.hop_length)"
            )
        self.repeat = frame_shift // hop_length
        self.stft = Stft(n_fft, win_length, hop_length, window)
        bins = n_fft // 2 + 1
        self.proj = torch.nn.Linear(bins + input_size, hidden_size)
        self.blstm = torch.nn.LSTM(
            hidden_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.out = torch.nn.Linear(hidden_size, bins)

    def upsample(
        self, feats: torch.Tensor, feats_lengths: torch.Tensor, frames: torch.Tensor
    ) -> torch.Tensor:
        """Repeat features to the STFT rate, padding with each utterance's own last
        valid frame: (B, T', D) -> (B, max(frames), D)."""
        t = torch.arange(int(frames.max()), device=feats.device)
        idx = torch.minimum(
            t[None, :] // self.repeat, (feats_lengths - 1).clamp(min=0)[:, None]
        )
        return torch.gather(feats, 1, idx[..., None].expand(-1, -1, feats.size(-1)))

    def enhance(
        self,
        feats: torch.Tensor,
        feats_lengths: torch.Tensor,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        with_wav: bool,
    ) -> SEOutput:
        """Enhanced log1p magnitudes (``spec``) and, with ``with_wav``, waveforms."""
        spec, frames = self.stft(speech * self.input_gain, speech_lengths)
        log_mag = torch.log1p(spec.abs())
        cond = self.upsample(feats, feats_lengths, frames).to(log_mag.dtype)
        h = self.proj(torch.cat([log_mag, cond], dim=-1))
        packed = pack_padded_sequence(
            h, frames.cpu(), batch_first=True, enforce_sorted=False
        )
        packed, _ = self.blstm(packed)
        h, _ = pad_packed_sequence(packed, batch_first=True, total_length=h.size(1))
        h = h.view(*h.shape[:2], 2, -1).sum(2)  # forward + backward directions
        mask = torch.sigmoid(self.out(h))
        valid = valid_mask(frames, h.size(1))[..., None]
        enhanced = (mask * log_mag).masked_fill(~valid, 0.0)
        wav = None
        if with_wav:  # noisy phase, enhanced magnitude
            phase = torch.polar(torch.ones_like(log_mag), spec.angle())
            wav = (
                self.stft.inverse(
                    torch.expm1(enhanced) * phase, speech_lengths, speech.size(1)
                )
                / self.input_gain
            )
        return SEOutput(wav, speech_lengths, enhanced, frames)

    def forward(self, feats, feats_lengths, speech, speech_lengths) -> SEOutput:
        """Training: waveforms only when the loss compares waveforms."""
        needs_wav = self.loss_fn.needs_wav
        return self.enhance(feats, feats_lengths, speech, speech_lengths, needs_wav)

    def predict(self, feats, feats_lengths, speech, speech_lengths) -> SEOutput:
        return self.enhance(feats, feats_lengths, speech, speech_lengths, True)

    def reference(self, batch) -> SEOutput:
        """The clean waveforms and their log1p magnitudes."""
        clean, lengths = self.target.from_batch(batch)
        spec, frames = self.stft(clean * self.input_gain, lengths)
        return SEOutput(clean, lengths, torch.log1p(spec.abs()), frames)
