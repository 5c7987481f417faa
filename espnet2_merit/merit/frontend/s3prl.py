"""All hidden states of an s3prl upstream (WavLM, HuBERT, ...) as one stack."""

import importlib
import logging
import sys
import types
from pathlib import Path
from typing import List, Optional, Tuple

import torch
from typeguard import typechecked

from espnet2_merit.merit.frontend.abs_frontend import AbsMultiLayerFrontend

logger = logging.getLogger(__name__)


class _Deferred:
    """An attribute of a module that is imported only when the attribute is used."""

    def __init__(self, module: str, name: str):
        self._module, self._name = module, name

    def __getattr__(self, attr: str):
        real = getattr(importlib.import_module(self._module), self._name)
        return getattr(real, attr)


class _LazyHub(types.ModuleType):
    """``s3prl.hub`` importing only the ``hubconf`` that defines the name asked for.

    The real hub imports every upstream s3prl knows: transformers (for the
    ``hf_*`` ones, ~5 s) and ``espnet2.tasks.hubert`` (for ``espnet_hubert``: with
    it ESPnet's trainer, tokenisers g2p_en and nltk, ~20 s, and network errors
    printed by nltk). A name is looked up in ``s3prl/upstream/<dir>/hubconf.py``,
    ``<dir>`` the longest upstream directory it starts with (``wavlm_local`` ->
    ``wavlm``); anything else (``options``, ``distilhubert``) comes from the real
    hub, imported with ``espnet2.tasks.hubert`` deferred until it is used.
    """

    _real: Optional[types.ModuleType] = None

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        import s3prl.upstream

        dirs = [
            d.name
            for d in Path(s3prl.upstream.__file__).parent.iterdir()
            if (d / "hubconf.py").is_file() and (name + "_").startswith(d.name + "_")
        ]
        if dirs:
            conf = importlib.import_module(
                f"s3prl.upstream.{max(dirs, key=len)}.hubconf"
            )
            if hasattr(conf, name):
                return getattr(conf, name)
        return getattr(self._full(), name)

    def _full(self) -> types.ModuleType:
        if _LazyHub._real is None:
            task = "espnet2.tasks.hubert"
            stand_in = types.ModuleType(task)
            stand_in.HubertTask = _Deferred(task, "HubertTask")
            installed = task not in sys.modules
            if installed:
                sys.modules[task] = stand_in
            del sys.modules["s3prl.hub"]  # so that the import runs the real one
            try:
                _LazyHub._real = importlib.import_module("s3prl.hub")
            finally:
                sys.modules["s3prl.hub"] = self
                if installed and sys.modules.get(task) is stand_in:
                    del sys.modules[task]
        return _LazyHub._real


def s3prl_upstream_class() -> type:
    """s3prl's ``S3PRLUpstream``, with its hub (``getattr(hub, name)``) lazy:
    see ``_LazyHub``; building a WavLM imports WavLM's code only."""
    if "s3prl.nn" not in sys.modules and "s3prl.hub" not in sys.modules:
        import s3prl

        s3prl.hub = sys.modules["s3prl.hub"] = _LazyHub("s3prl.hub")
    from s3prl.nn import S3PRLUpstream

    return S3PRLUpstream


def _is_upstream(name: str) -> bool:
    """Whether s3prl's ``hub.options()`` lists ``name``, without importing every
    upstream (the hub lists its public callables)."""
    from s3prl import hub

    public = not name.startswith("_") and name != "options"
    return public and callable(getattr(hub, name, None))


def _input_norm_switch(expert: torch.nn.Module, name: str) -> Tuple[object, str]:
    """Where an s3prl expert keeps its "layer-normalise the input" flag: the
    WavLM config's ``normalize``, the HuBERT task config's, wav2vec 2.0's
    ``wav_normalize``."""
    for owner, attr in (
        (getattr(expert, "cfg", None), "normalize"),
        (getattr(expert, "task_cfg", None), "normalize"),
        (expert, "wav_normalize"),
    ):
        if owner is not None and hasattr(owner, attr):
            return owner, attr
    raise ValueError(
        f"frontend_conf.input_norm: s3prl upstream '{name}' has no input "
        "normalisation switch; leave input_norm unset (null)"
    )


class S3prlMultiLayerFrontend(AbsMultiLayerFrontend):
    """s3prl upstream returning every layer (e.g. 25 for WavLM Large).

    Unlike ESPnet's ``S3prlFrontend``, which returns one layer or a weighted sum,
    this keeps the layers apart so that the fusion module decides how to mix them.
    """

    @typechecked
    def __init__(
        self,
        fs: int = 16000,
        upstream: str = "wavlm_large",
        path_or_url: Optional[str] = None,
        normalize: bool = False,
        extra_conf: Optional[dict] = None,
        layers: Optional[List[int]] = None,
        freeze_cnn: bool = True,
        exact_padding: bool = True,
        input_norm: Optional[bool] = None,
    ):
        """Build the upstream.

        Args:
            fs: Sampling rate of the input; s3prl upstreams expect 16 kHz.
            upstream: s3prl upstream name (``wavlm_large``, ``wavlm_local``, ...).
            path_or_url: Checkpoint for ``*_local`` / ``*_url`` / ``*_custom`` names.
            normalize: Layer-normalise each hidden state (s3prl's option).
            extra_conf: Extra keyword arguments for the upstream.
            layers: Indices of hidden states to keep (default all).
            freeze_cnn: Keep the convolutional feature extractor frozen, as the
                paper does (s3prl's default for WavLM/HuBERT).
            exact_padding: Run utterances of different lengths one by one, so that
                batched features equal unbatched ones. s3prl's WavLM/HuBERT mask
                padding in chunks of about (but not exactly) 320 samples, so in a
                padded batch a shorter utterance also attends to one partially
                padded frame past its end. False runs one padded batch: faster on
                a GPU, slightly batch-dependent near utterance ends.
            input_norm: Whether the upstream layer-normalises each input
                waveform (s3prl does for WavLM Large, as its pre-training did).
                None keeps the upstream's setting; False
                feeds the waveform as the model's ``normalize`` left it (the
                authors' release: the globally z-normalised waveform).
        """
        super().__init__()
        S3PRLUpstream = s3prl_upstream_class()

        if fs != 16000:
            raise ValueError(
                f"s3prl upstreams need 16 kHz input, the config says fs={fs}"
            )
        if not _is_upstream(upstream):
            raise ValueError(
                f"frontend_conf.upstream='{upstream}' is not an s3prl upstream; "
                "for a local WavLM checkpoint use 'wavlm_local' with path_or_url"
            )
        self.upstream = S3PRLUpstream(
            upstream,
            path_or_url=path_or_url,
            normalize=normalize,
            extra_conf=extra_conf,
        )
        model = getattr(self.upstream.upstream, "model", None)
        if model is not None and hasattr(model, "feature_grad_mult"):
            model.feature_grad_mult = 0.0 if freeze_cnn else 1.0
        if input_norm is not None:
            owner, attr = _input_norm_switch(self.upstream.upstream, upstream)
            setattr(owner, attr, input_norm)
        self.exact_padding, self.upstream_name = exact_padding, upstream
        total = self.upstream.num_layers
        self.layers = list(range(total)) if layers is None else list(layers)
        for i in self.layers:
            if not -total <= i < total:
                raise ValueError(f"frontend_conf.layers: {i} out of range for {total}")
        sizes = {self.upstream.hidden_sizes[i] for i in self.layers}
        rates = {self.upstream.downsample_rates[i] for i in self.layers}
        if len(sizes) != 1 or len(rates) != 1:
            raise ValueError(f"layers differ in size {sizes} or frame rate {rates}")
        self._size, self._shift = sizes.pop(), rates.pop()
        # (kernel, stride) of the convolutional front of wav2vec2-style models, to
        # compute exact frame counts (s3prl rounds up and repeats the last frame).
        self._convs = [
            (m.kernel_size[0], m.stride[0])
            for m in getattr(model, "feature_extractor", torch.nn.Module()).modules()
            if isinstance(m, torch.nn.Conv1d)
        ]
        logger.info(f"s3prl {upstream}: {len(self.layers)} layers x {self._size}")

    def num_layers(self) -> int:
        return len(self.layers)

    def output_size(self) -> int:
        return self._size

    def frame_shift(self) -> int:
        return self._shift

    def min_samples(self) -> int:
        field = 1
        for kernel, stride in reversed(self._convs):
            field = (field - 1) * stride + kernel
        return max(field, self._shift)

    def _frame_lengths(self, lengths: torch.Tensor, s3prl_lengths: torch.Tensor):
        if not self._convs:
            return s3prl_lengths
        out = lengths
        for kernel, stride in self._convs:
            out = torch.div(out - kernel, stride, rounding_mode="floor") + 1
        return torch.minimum(out.clamp(min=1), s3prl_lengths)

    def _stack(self, speech: torch.Tensor, speech_lengths: torch.Tensor):
        hs, hs_lens = self.upstream(speech, speech_lengths)
        feats = torch.stack([hs[i] for i in self.layers], dim=2)
        lengths = self._frame_lengths(speech_lengths, hs_lens[self.layers[0]])
        return feats[:, : int(lengths.max())], lengths

    def forward(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """See ``AbsMultiLayerFrontend.forward``; output (B, T, L, D)."""
        if not self.exact_padding or bool((speech_lengths == speech_lengths[0]).all()):
            return self._stack(speech, speech_lengths)
        outs = [
            self._stack(speech[b : b + 1, :n], speech_lengths[b : b + 1])
            for b, n in enumerate(speech_lengths.tolist())
        ]
        lengths = torch.cat([length for _, length in outs])
        feats = speech.new_zeros(
            len(outs), int(lengths.max()), len(self.layers), self._size
        )
        for b, (f, length) in enumerate(outs):
            feats[b, : int(length[0])] = f[0, : int(length[0])]
        return feats, lengths
