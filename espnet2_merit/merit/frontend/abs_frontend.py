"""Interface of multi-layer frontends: waveform -> a stack of per-layer features."""

import logging
import math
from abc import ABC, abstractmethod
from typing import List, Tuple

import torch

logger = logging.getLogger(__name__)


def reachable_parameters(output: torch.Tensor) -> List[torch.Tensor]:
    """The leaf tensors (parameters) that ``output``'s autograd graph reaches:
    those a backward pass from ``output`` would give a gradient."""
    found, seen, stack = [], set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):  # AccumulateGrad: a leaf
            found.append(node.variable)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return found


class AbsMultiLayerFrontend(torch.nn.Module, ABC):
    """Turns a waveform batch into all the layers a fusion module chooses from.

    Implementers override ``num_layers``, ``output_size``, ``frame_shift`` and
    ``forward``; ``min_samples`` when the receptive field is longer than one
    frame shift. ``freeze_unreachable`` (called by the model builder) needs
    nothing from them.
    """

    @abstractmethod
    def num_layers(self) -> int:
        """Number of layers L in the output stack."""

    @abstractmethod
    def output_size(self) -> int:
        """Feature size D of every layer."""

    @abstractmethod
    def frame_shift(self) -> int:
        """Samples between two output frames (320 for WavLM at 16 kHz)."""

    def min_samples(self) -> int:
        """Shortest input giving one full output frame (its receptive field)."""
        return self.frame_shift()

    @abstractmethod
    def forward(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Compute the layer stack.

        Args:
            speech: Waveforms (B, N).
            speech_lengths: Valid samples per waveform (B,).

        Returns:
            feats: (B, T, L, D); frames past ``feats_lengths`` are padding.
            feats_lengths: (B,).
        """

    def freeze_unreachable(self) -> int:
        """Set ``requires_grad=False`` on every parameter the output never depends
        on; return how many tensors that froze.

        A pre-trained upstream carries parts its features do not use: WavLM's CNN
        run under ``no_grad`` (``freeze_cnn``), ``mask_emb`` and pre-training
        heads, layers above the last one kept. They would never get a gradient,
        and DistributedDataParallel stops at the first step when a parameter it
        reduces has none ("Expected to have finished reduction in the prior
        iteration"). Which parameters are reached is found by one forward pass
        on a short deterministic waveform, in eval mode (no dropout: the random
        state is left untouched), walking its autograd graph; no backward pass.
        """
        trainable = [p for p in self.parameters() if p.requires_grad]
        if not trainable:
            return 0
        n = 2 * self.min_samples()
        wave = torch.sin(torch.arange(n) * (2 * math.pi * 440 / 16000))[None]
        modes = {m: m.training for m in self.modules()}
        self.eval()
        try:
            with torch.enable_grad():
                feats, _ = self(wave, torch.tensor([n]))
        finally:
            for module, training in modes.items():
                module.training = training
        reached = {id(p) for p in reachable_parameters(feats)}
        unused = [p for p in trainable if id(p) not in reached]
        for p in unused:
            p.requires_grad_(False)
        if unused:
            logger.info(
                f"frontend: {len(unused)} parameter tensors "
                f"({sum(p.numel() for p in unused)} values) never reach the "
                "features (frozen CNN, pre-training parts): frozen"
            )
        return len(unused)
