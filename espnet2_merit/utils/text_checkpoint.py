"""Local text-encoder checkpoints with random weights, loadable offline by
``transformers`` (``AutoModel`` / ``AutoTokenizer`` from a folder).

Tests and the tiny configs use them to get real RoBERTa computation without any
download, as ``espnet2_merit.utils.ssl_checkpoint`` does for WavLM.
"""

from pathlib import Path
from typing import Iterable, Optional, Union

# Words of the tiny vocabulary: those of the generated data (utils/synthetic.py)
# and of the mini corpus's sentences are enough for tests; any other word reads
# as <unk>.
TINY_WORDS = (
    "the a an is was are be to of and in on at for it this that with you i we "
    "they he she not no yes do did will can have has had here there now today "
    "report week end meeting train bus weather again time day good fine okay "
    "hello thanks please really very much more some all what when where why how"
).split()
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # RoBERTa's ids 0-4


def make_roberta_checkpoint(
    path: Union[str, Path],
    words: Optional[Iterable[str]] = None,
    hidden_size: int = 32,
    num_layers: int = 2,
    seed: int = 0,
) -> Path:
    """Write a randomly initialised RoBERTa and a word-level tokenizer to a folder.

    The tokenizer (built with the ``tokenizers`` library, offline) lower-cases,
    splits on whitespace and punctuation, maps each word of ``words`` to its own
    id and adds ``<s> ... </s>`` like RoBERTa's.

    Args:
        path: Output folder (``save_pretrained``); parents are created.
        words: The vocabulary besides the special tokens (default ``TINY_WORDS``).
        hidden_size: Width of the encoder (heads: 2; feed-forward: 2x).
        num_layers: Transformer layers (hidden states: num_layers + 1).
        seed: Seed of the random initialisation (same seed, same weights).

    Returns:
        The folder written.
    """
    import torch
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel

    vocab = {t: i for i, t in enumerate(SPECIALS)}
    for word in words if words is not None else TINY_WORDS:
        vocab.setdefault(str(word).lower(), len(vocab))
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=64,
    )
    config = RobertaConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=64 + 2,  # RoBERTa's positions start after pad (1)
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    model = RobertaModel(config)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
