"""Interface of text frontends: transcripts -> a stack of per-layer token features.

A family of its own beside the speech frontends (``AbsMultiLayerFrontend``):
text has no sampling rate, frame shift or receptive field, and its input is
tokenised in the data loader (the preprocessor calls ``build_tokenizer``'s
result), so that token ids travel through ESPnet's collate function with their
lengths like any other sequence.
"""

import logging
from abc import ABC, abstractmethod
from typing import Any, Callable, Tuple

import numpy as np
import torch

from espnet2_merit.merit.frontend.abs_frontend import reachable_parameters

logger = logging.getLogger(__name__)

# Text a frontend tokenises to find its unreachable parameters (any words do).
PROBE_TEXT = "this is a test"


class AbsTextFrontend(torch.nn.Module, ABC):
    """Token ids (B, S) -> all hidden layers (B, S, L, D) of a text encoder.

    Implementers override ``build_tokenizer`` (a picklable callable str ->
    (S,) int64 ids, run in DataLoader workers), ``num_layers``, ``output_size``
    and ``forward``; ``freeze_unreachable`` needs nothing from them.
    """

    @classmethod
    @abstractmethod
    def build_tokenizer(cls, **conf: Any) -> Callable[[str], np.ndarray]:
        """The tokenizer of a frontend built with options ``conf``
        (``text_frontend_conf``), without building the encoder."""

    @abstractmethod
    def num_layers(self) -> int:
        """Number of layers L in the output stack."""

    @abstractmethod
    def output_size(self) -> int:
        """Feature size D of every layer."""

    @abstractmethod
    def forward(
        self, tokens: torch.Tensor, token_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Compute the layer stack.

        Args:
            tokens: (B, S) token ids; positions past ``token_lengths`` are padding
                (any value: the collate function pads with -1).
            token_lengths: (B,) valid tokens per transcript.

        Returns:
            feats: (B, S, L, D), zero past the lengths.
            feats_lengths: (B,), equal to ``token_lengths``.
        """

    def freeze_unreachable(self) -> int:
        """Set ``requires_grad=False`` on every parameter the output never depends
        on (e.g. RoBERTa's pooler); return how many tensors that froze.

        As ``AbsMultiLayerFrontend.freeze_unreachable``: DistributedDataParallel
        stops when a parameter it reduces never gets a gradient. Found by one
        forward pass on ``PROBE_TEXT`` in eval mode, walking its autograd graph.
        """
        trainable = [p for p in self.parameters() if p.requires_grad]
        if not trainable:
            return 0
        ids = torch.as_tensor(self.tokenizer(PROBE_TEXT))[None]
        modes = {m: m.training for m in self.modules()}
        self.eval()
        try:
            with torch.enable_grad():
                feats, _ = self(ids, torch.tensor([ids.size(1)]))
        finally:
            for module, training in modes.items():
                module.training = training
        reached = {id(p) for p in reachable_parameters(feats)}
        unused = [p for p in trainable if id(p) not in reached]
        for p in unused:
            p.requires_grad_(False)
        if unused:
            logger.info(
                f"text_frontend: {len(unused)} parameter tensors never reach the "
                "features (e.g. the pooler): frozen"
            )
        return len(unused)
