"""Long recordings in overlapping windows, and their outputs put back together.

Windows start on the model's frame grid, so every window's frames are frames of
the whole recording. Each window "speaks for" its samples up to the middle of its
overlaps: utterance-level outputs are averaged weighted by that stretch,
waveforms are cross-faded over the overlaps, and each frame's routing comes from
the window it is most central in. Memory then depends on the window length, not
on the recording's.
"""

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
import torch


@dataclass
class Window:
    rec: int  # index of the recording
    start: int  # samples at the model rate
    end: int
    own_start: int  # the part of the recording this window speaks for
    own_end: int


def plan_windows(rec: int, num: int, window: int, hop: int, shift: int) -> List[Window]:
    """Windows of ``window`` samples every ``hop`` (a multiple of the frame
    ``shift``) over a recording of ``num`` samples; one window if it fits."""
    if num <= window:
        return [Window(rec, 0, num, 0, num)]
    # The last window runs to the end (< 1 frame longer than the others) so every
    # frame time is a multiple of the shift.
    starts = list(range(0, num - window, hop))
    last = (num - window) // shift * shift
    if last > starts[-1]:
        starts.append(last)
    ends = [s + window for s in starts[:-1]] + [num]
    cuts = [0] + [(s + e) // 2 for s, e in zip(starts[1:], ends[:-1])] + [num]
    return [
        Window(rec, s, e, cuts[i], cuts[i + 1])
        for i, (s, e) in enumerate(zip(starts, ends))
    ]


def average(windows: Sequence[Window], values: Sequence[np.ndarray]) -> np.ndarray:
    """Utterance-level outputs weighted by the stretch each window speaks for."""
    weights = np.array([w.own_end - w.own_start for w in windows], dtype=float)
    return np.average(np.stack(values), 0, weights).astype(np.float32)


def crossfade(
    windows: Sequence[Window], wavs: Sequence[torch.Tensor], num: int
) -> torch.Tensor:
    """(num,) waveform from the windows' waveforms, linearly cross-faded over
    each overlap (around the cut between two windows)."""
    out, total = torch.zeros(num), torch.zeros(num)
    for w, wav in zip(windows, wavs):
        fade = torch.ones(w.end - w.start)
        n_in, n_out = w.own_start - w.start, w.end - w.own_end
        if n_in:
            fade[: 2 * n_in] = torch.linspace(0, 1, 2 * n_in + 2)[1:-1]
        if n_out:
            fade[-2 * n_out :] = torch.linspace(1, 0, 2 * n_out + 2)[1:-1]
        out[w.start : w.end] += fade * wav
        total[w.start : w.end] += fade
    return out / total


def central_frames(
    windows: Sequence[Window],
    routes: Sequence[Tuple[np.ndarray, np.ndarray]],
    shift: int,
    fs: int,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame (experts, gates, times) of the whole recording, each frame from
    the window that speaks for its start."""
    experts, gates, times = [], [], []
    for w, (e, g) in zip(windows, routes):
        starts = w.start + np.arange(len(e)) * shift
        keep = (starts >= w.own_start) & (starts < w.own_end)
        experts.append(e[keep])
        gates.append(g[keep])
        times.append(starts[keep] / fs)
    return np.concatenate(experts), np.concatenate(gates), np.concatenate(times)
