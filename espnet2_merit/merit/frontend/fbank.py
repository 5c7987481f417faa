"""Log-mel filterbank frontend: a single-layer stack for non-SSL baselines."""

from typing import Tuple

import torch
import torchaudio
from typeguard import typechecked

from espnet2_merit.layers.stft import Stft
from espnet2_merit.merit.frontend.abs_frontend import AbsMultiLayerFrontend
from espnet2_merit.utils.masks import valid_mask


class FbankFrontend(AbsMultiLayerFrontend):
    """log(mel power + eps) features, returned as a stack of one layer."""

    @typechecked
    def __init__(
        self,
        fs: int = 16000,
        n_fft: int = 512,
        win_length: int = 400,
        hop_length: int = 160,
        n_mels: int = 80,
        window: str = "hann",
    ):
        super().__init__()
        self.stft = Stft(n_fft, win_length, hop_length, window)
        mel = torchaudio.functional.melscale_fbanks(
            n_fft // 2 + 1, 0.0, fs / 2, n_mels, fs, norm="slaney", mel_scale="slaney"
        )
        self.register_buffer("mel", mel, persistent=False)  # (F, n_mels)
        self.hop_length, self.n_mels = hop_length, n_mels
        self.win_length = win_length

    def num_layers(self) -> int:
        return 1

    def output_size(self) -> int:
        return self.n_mels

    def frame_shift(self) -> int:
        return self.hop_length

    def min_samples(self) -> int:
        return self.win_length

    def forward(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """See ``AbsMultiLayerFrontend.forward``; output (B, T, 1, n_mels)."""
        spec, lengths = self.stft(speech, speech_lengths)
        feats = torch.log(spec.abs().pow(2) @ self.mel + 1e-6)
        feats = feats.masked_fill(~valid_mask(lengths, feats.size(1))[..., None], 0.0)
        return feats.unsqueeze(2), lengths
