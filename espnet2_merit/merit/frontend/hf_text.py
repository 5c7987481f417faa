"""Any Hugging Face ``transformers`` text encoder (RoBERTa, BERT, ...) as a text
frontend: all its hidden states as a layer stack."""

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from typeguard import typechecked

from espnet2_merit.errors import MeritInputError
from espnet2_merit.merit.frontend.abs_text_frontend import AbsTextFrontend
from espnet2_merit.utils.masks import valid_mask


class HFTokenizer:
    """A transcript -> (S,) int64 token ids with the model's special tokens
    (``<s> ... </s>`` for RoBERTa), cut to ``max_tokens``. Picklable, so
    DataLoader workers carry it.

    Args:
        model_name_or_path: Hub name (``roberta-large``) or a local folder.
        local_files_only: Never download (the cache or the folder only).
        max_tokens: Longest token sequence kept (None: the model's limit).
    """

    def __init__(
        self,
        model_name_or_path: str,
        local_files_only: bool = False,
        max_tokens: Optional[int] = 512,
    ):
        from transformers import AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                model_name_or_path, local_files_only=local_files_only
            )
        except OSError as e:
            raise MeritInputError(
                f"text_frontend_conf.model_name_or_path={model_name_or_path!r}: "
                f"cannot load its tokenizer ({e})"
            ) from None
        self.max_tokens = max_tokens
        self.pad_id = self.tokenizer.pad_token_id

    def __call__(self, text: str) -> np.ndarray:
        ids = self.tokenizer(
            text,
            truncation=self.max_tokens is not None,
            max_length=self.max_tokens,
        )["input_ids"]
        return np.asarray(ids, dtype=np.int64)


class HFTextFrontend(AbsTextFrontend):
    """``AutoModel`` hidden states (embeddings + every layer) -> (B, S, L, D).

    The attention mask comes from the token lengths, so padding never enters
    attention; padded positions are set to the pad id (RoBERTa computes its
    position ids from it) and zeroed in the output. Frozen or fine-tuned with
    ESPnet's ``--freeze_param text_frontend.model``.
    """

    @typechecked
    def __init__(
        self,
        model_name_or_path: str = "roberta-large",
        local_files_only: bool = False,
        max_tokens: Optional[int] = 512,
    ):
        """Load the encoder and its tokenizer.

        Args:
            model_name_or_path: Hub name or local folder (``save_pretrained``).
            local_files_only: Never download.
            max_tokens: Longest token sequence kept (None: the model's limit).
        """
        super().__init__()
        from transformers import AutoModel

        self.tokenizer = HFTokenizer(model_name_or_path, local_files_only, max_tokens)
        try:
            self.model = AutoModel.from_pretrained(
                model_name_or_path, local_files_only=local_files_only
            )
        except OSError as e:
            raise MeritInputError(
                f"text_frontend_conf.model_name_or_path={model_name_or_path!r}: "
                f"cannot load the model ({e})"
            ) from None
        config = self.model.config
        self._layers = int(config.num_hidden_layers) + 1  # embeddings too
        self._size = int(config.hidden_size)
        if self.tokenizer.pad_id is None:
            raise MeritInputError(
                f"{model_name_or_path}: the tokenizer has no pad token"
            )

    @classmethod
    def build_tokenizer(cls, **conf: Any) -> HFTokenizer:
        keys = ("model_name_or_path", "local_files_only", "max_tokens")
        conf = {k: v for k, v in conf.items() if k in keys}
        name = conf.pop("model_name_or_path", "roberta-large")
        if isinstance(name, Path):
            name = str(name)
        return HFTokenizer(name, **conf)

    def num_layers(self) -> int:
        return self._layers

    def output_size(self) -> int:
        return self._size

    def forward(self, tokens, token_lengths):
        mask = valid_mask(token_lengths, tokens.size(1))
        ids = tokens.masked_fill(~mask, self.tokenizer.pad_id)
        out = self.model(
            input_ids=ids, attention_mask=mask.long(), output_hidden_states=True
        )
        feats = torch.stack(out.hidden_states, dim=2)  # (B, S, L, D)
        return feats * mask[:, :, None, None].to(feats.dtype), token_lengths
