"""The padding mask: every module that needs one uses this."""

import torch


def valid_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True on valid frames (or samples).

    Linear in T (no (T+1) x (T+1) matrix as in ESPnet's traceable
    ``make_pad_mask``), so it serves raw waveforms of a few hundred thousand
    samples too.
    """
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]
