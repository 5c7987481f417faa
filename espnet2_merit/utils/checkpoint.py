"""Reading and writing checkpoints: nothing pickled ever runs, a torn file is
never trusted, and every problem is one line naming the file.

Every checkpoint this package reads (model weights for inference and
``--init_param``, ESPnet's ``checkpoint.pth`` for ``--resume``, the epoch files
averaged at the end of training, SSL checkpoints) is loaded with
``weights_only=True``: PyTorch's restricted unpickler, which rebuilds tensors,
containers and numbers but no other object, so a malicious pickle cannot run
code. ``force_weights_only`` makes that hold inside ESPnet and s3prl too, whose
loaders pass ``weights_only=False``.
"""

import datetime
import os
import pickle
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Union

import torch

from espnet2_merit.errors import MeritInputError

PathLike = Union[str, Path]
_FORCE = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"
_UNSAFE = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


def force_weights_only() -> None:
    """Make every ``torch.load`` of this process (and of the processes it
    spawns) weights-only, whatever its caller passes (PyTorch's documented
    ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` switch, read at each call)."""
    if os.environ.get(_UNSAFE, "0").lower() in ("1", "y", "yes", "true"):
        raise MeritInputError(
            f"{_UNSAFE} is set: espnet2_merit never loads pickled code; unset it"
        )
    os.environ[_FORCE] = "1"
    _allow_reporter_types()


def _allow_reporter_types() -> None:
    # ESPnet's checkpoint.pth holds the reporter's statistics, which may be numpy
    # scalars, and elapsed times (timedelta): data, no code; allowed.
    import numpy as np

    scalar = getattr(np, "_core", np.core).multiarray.scalar
    dtypes = [type(np.dtype(t)) for t in ("float64", "float32", "int64", "bool")]
    torch.serialization.add_safe_globals(
        [scalar, np.dtype, *dtypes, datetime.timedelta]
    )


def load_checkpoint(
    path: PathLike, what: str = "checkpoint", mmap: bool = False
) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with one-line errors.

    Args:
        path: The file.
        what: What it is, for messages (e.g. "--init_param").
        mmap: Map the tensors instead of reading them (cheap validation).
    """
    path = Path(path)
    if not path.is_file():
        raise MeritInputError(f"{what}: no such file {path}")
    _allow_reporter_types()
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        detail = _detail(str(e))
        if "global" in detail.lower() or "unsupported class" in detail.lower():
            raise MeritInputError(
                f"{what} {path}: refused: it holds pickled objects other than "
                "tensors and plain data, which could run code when loaded "
                f"({detail})"
            ) from None
        raise MeritInputError(
            f"{what} {path}: not a readable PyTorch checkpoint ({detail})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MeritInputError(
            f"{what} {path}: corrupt or incomplete checkpoint (a killed save?): "
            f"{first}"
        ) from None


def check_checkpoint(path: PathLike, what: str, part: Optional[str] = None) -> None:
    """Load a checkpoint weights-only with its tensors memory-mapped (cheap for
    large files): a refused pickle or a corrupt file is an error now, naming it,
    before another library loads it. With ``part`` (``--init_param``'s source key,
    e.g. ``heads``), the checkpoint must hold parameters under ``<part>.``."""
    state = load_checkpoint(path, what, mmap=zipfile.is_zipfile(path))
    if part and isinstance(state, dict):
        if not any(str(k).startswith(part + ".") for k in state):
            parts = sorted({str(k).split(".")[0] for k in state})
            raise MeritInputError(
                f"{what} {path}: no parameters under '{part}.'; its parts: "
                f"{', '.join(parts)}"
            )


def _detail(message: str) -> str:
    """The line of a weights-only error that says what was found."""
    for line in message.splitlines():
        if "unsupported" in line.lower():
            return line.strip().removeprefix("WeightsUnpickler error: ")
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def load_state_dict(
    path: PathLike, what: str = "model file"
) -> Dict[str, torch.Tensor]:
    """A model state dict: a mapping of names to tensors, every floating-point
    tensor finite (a NaN model is an error naming the file and a parameter)."""
    state = load_checkpoint(path, what)
    if isinstance(state, dict) and "model" in state and "optimizers" in state:
        raise MeritInputError(
            f"{what} {path} is a training checkpoint (checkpoint.pth); give the "
            "weights file (e.g. valid.*.best.pth or <N>epoch.pth)"
        )
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise MeritInputError(
            f"{what} {path}: expected a state dict (parameter name -> tensor)"
        )
    for name, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise MeritInputError(
                f"{what} {path}: parameter '{name}' has NaN or Inf values"
            )
    return state


PREVIOUS = "checkpoint.prev.pth"  # the checkpoint.pth before the last save


@contextmanager
def atomic_torch_save() -> Iterator[None]:
    """Within the block, ``torch.save(obj, <path>)`` writes atomically: to
    ``<path>.tmp``, flushed to disk, then renamed (for ESPnet's trainer, which
    saves ``checkpoint.pth`` and the epoch files itself). A ``checkpoint.pth``
    being replaced is kept as ``checkpoint.prev.pth`` (a hard link, so that a
    ``checkpoint.pth`` exists at every moment). File-like destinations are passed
    through unchanged."""
    original = torch.save

    def save(obj, f, *args, **kwargs):
        if not isinstance(f, (str, Path)):
            return original(obj, f, *args, **kwargs)
        path = Path(f)
        tmp = path.with_name(path.name + ".tmp")
        original(obj, tmp, *args, **kwargs)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        if path.name == "checkpoint.pth" and path.is_file():
            prev = path.with_name(PREVIOUS)
            prev.unlink(missing_ok=True)
            os.link(path, prev)
        os.replace(tmp, path)

    torch.save = save
    try:
        yield
    finally:
        torch.save = original
