"""Per-utterance STFT / iSTFT over padded batches.

``torch.stft(center=True)`` reflect-pads the *padded* signal, so the last frames of a
short utterance would see the batch's zero padding instead of its own reflection, and
batched outputs would differ from one-by-one outputs. Transforming each utterance on
its valid samples keeps them identical; the STFT is a small part of the cost.
"""

from typing import Tuple

import torch
from typeguard import typechecked


class Stft(torch.nn.Module):
    """Centred STFT whose frames and lengths do not depend on the batch."""

    @typechecked
    def __init__(
        self,
        n_fft: int = 400,
        win_length: int = 400,
        hop_length: int = 160,
        window: str = "hamming",
    ):
        super().__init__()
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        window_fn = getattr(torch, f"{window}_window", None)
        if window_fn is None:
            raise ValueError(f"unknown STFT window '{window}'")
        self.register_buffer("window", window_fn(win_length), persistent=False)

    def num_frames(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames of a centred STFT of ``lengths`` samples: (B,)."""
        return torch.div(lengths, self.hop_length, rounding_mode="floor") + 1

    def forward(
        self, wav: torch.Tensor, lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Complex spectra.

        Args:
            wav: (B, N) waveforms.
            lengths: (B,) valid samples.

        Returns:
            spec: (B, T, F) complex, zero past each utterance's frames.
            frame_lengths: (B,).
        """
        frame_lengths = self.num_frames(lengths)
        spec = wav.new_zeros(
            wav.size(0),
            int(frame_lengths.max()),
            self.n_fft // 2 + 1,
            dtype=torch.complex64 if wav.dtype != torch.float64 else torch.complex128,
        )
        for b, n in enumerate(lengths.tolist()):
            x = wav[b, :n].float() if wav.dtype == torch.float16 else wav[b, :n]
            pad = "reflect" if n > self.n_fft // 2 else "constant"
            s = torch.stft(
                x,
                self.n_fft,
                self.hop_length,
                self.win_length,
                window=self.window.to(x.dtype),
                center=True,
                pad_mode=pad,
                return_complex=True,
            )
            spec[b, : s.size(1)] = s.transpose(0, 1)
        return spec, frame_lengths

    def inverse(
        self, spec: torch.Tensor, lengths: torch.Tensor, num_samples: int
    ) -> torch.Tensor:
        """Waveforms of exactly ``lengths`` samples from (B, T, F) complex spectra.

        Returns:
            (B, num_samples) waveforms, zero past each length.
        """
        frame_lengths = self.num_frames(lengths)
        out = spec.real.new_zeros(spec.size(0), num_samples)
        for b, (n, t) in enumerate(zip(lengths.tolist(), frame_lengths.tolist())):
            out[b, :n] = torch.istft(
                spec[b, :t].transpose(0, 1),
                self.n_fft,
                self.hop_length,
                self.win_length,
                window=self.window.to(out.dtype),
                center=True,
                length=n,
            )
        return out
