"""Local ASR checkpoints with random weights, loadable offline by ``transformers``
(``AutoProcessor`` with ``AutoModelForCTC`` or ``AutoModelForSpeechSeq2Seq``
from a folder, ``local_files_only``): a wav2vec2 CTC model and a Whisper.

Tests use them to run ``espnet2_merit.asr.Transcriber`` through the real
``transformers`` code without any download, as ``utils.text_checkpoint`` does for
RoBERTa. Their transcripts are gibberish (random weights): they test shapes and
behaviour, not recognition.
"""

import json
from pathlib import Path
from typing import Union

# Character vocabulary of the tiny CTC model, in the layout of the public
# wav2vec2 CTC checkpoints: <pad> is the CTC blank, "|" the word delimiter.
CTC_SPECIALS = ("<pad>", "<s>", "</s>", "<unk>", "|")
CTC_CHARS = tuple("abcdefghijklmnopqrstuvwxyz'")


def make_ctc_checkpoint(
    path: Union[str, Path],
    seed: int = 0,
    feat_extract_norm: str = "layer",
    hidden_size: int = 32,
    num_layers: int = 2,
) -> Path:
    """Write a randomly initialised ``Wav2Vec2ForCTC`` and its processor to a folder.

    The processor is a ``Wav2Vec2CTCTokenizer`` (characters of ``CTC_CHARS``, from
    a ``vocab.json``) and a ``Wav2Vec2FeatureExtractor`` at 16 kHz. The conv stack
    has 3 layers, strides 5 x 8 x 8 (one frame per 320 samples, 20 ms, as
    wav2vec2's) and a receptive field of 10 + 7 x 5 + 7 x 40 = 325 samples.

    Args:
        path: Output folder (``save_pretrained``); parents are created.
        seed: Seed of the random initialisation (same seed, same weights).
        feat_extract_norm: ``"layer"`` (large wav2vec2 / HuBERT checkpoints: the
            feature extractor returns an attention mask, padding is masked) or
            ``"group"`` (wav2vec2 Base: no attention mask, the group norm spans
            the padded length).
        hidden_size: Width of the transformer (heads: 2; feed-forward: 2x).
        num_layers: Transformer layers.

    Returns:
        The folder written.
    """
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    if feat_extract_norm not in ("layer", "group"):
        raise ValueError(
            f"feat_extract_norm: layer or group, not {feat_extract_norm!r}"
        )
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = {t: i for i, t in enumerate(CTC_SPECIALS + CTC_CHARS)}
    vocab_file = path / "vocab.json"
    vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
    tokenizer = Wav2Vec2CTCTokenizer(
        str(vocab_file),
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        word_delimiter_token="|",
    )
    layer = feat_extract_norm == "layer"
    feature_extractor = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=layer,
    )
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        conv_dim=(16, 16, 16),
        conv_kernel=(10, 8, 8),
        conv_stride=(5, 8, 8),
        feat_extract_norm=feat_extract_norm,
        do_stable_layer_norm=layer,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        pad_token_id=vocab["<pad>"],
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        ctc_loss_reduction="mean",
    )
    torch.manual_seed(seed)
    model = Wav2Vec2ForCTC(config).eval()
    model.save_pretrained(path)
    Wav2Vec2Processor(
        feature_extractor=feature_extractor, tokenizer=tokenizer
    ).save_pretrained(path)
    return path


# Languages of the tiny multilingual Whisper (its language tokens).
WHISPER_LANGUAGES = ("en", "de")
WHISPER_SPECIALS = (
    "<|endoftext|>",
    "<|startoftranscript|>",
    *(f"<|{lang}|>" for lang in WHISPER_LANGUAGES),
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nospeech|>",
    "<|notimestamps|>",
)


def make_whisper_checkpoint(
    path: Union[str, Path],
    seed: int = 0,
    multilingual: bool = True,
    d_model: int = 32,
    num_layers: int = 1,
) -> Path:
    """Write a randomly initialised ``WhisperForConditionalGeneration`` and its
    processor to a folder.

    The tokenizer is Whisper's byte-level BPE with the bytes of lower-case
    letters, the apostrophe and the space only (no merges), and Whisper's special
    tokens (languages of ``WHISPER_LANGUAGES`` when ``multilingual``); the
    generation config has what ``generate`` needs (task and language tokens, no
    timestamps) and suppresses the special tokens inside a transcript. The
    feature extractor is Whisper's (80 log-mel bins, 30 s windows at 16 kHz). The
    weights are drawn with a large spread (``init_std`` 1) so that different
    inputs get different (gibberish) transcripts.

    Args:
        path: Output folder (``save_pretrained``); parents are created.
        seed: Seed of the random initialisation (same seed, same weights).
        multilingual: Language and task tokens (a multilingual Whisper); False:
            an English-only one.
        d_model: Width of the encoder and decoder (heads: 2; feed-forward: 2x).
        num_layers: Encoder and decoder layers each.

    Returns:
        The folder written.
    """
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    byte_chars = bytes_to_unicode()
    vocab = {byte_chars[b]: i for i, b in enumerate(b"abcdefghijklmnopqrstuvwxyz' ")}
    specials = [
        t
        for t in WHISPER_SPECIALS
        if multilingual
        or t[2:-2] not in (*WHISPER_LANGUAGES, "translate", "transcribe")
    ]
    vocab[specials[0]] = len(vocab)
    tokenizer = WhisperTokenizer(vocab=vocab, merges=[], pad_token=specials[0])
    tokenizer.add_special_tokens({"additional_special_tokens": specials[1:]})
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in specials}
    eot = ids["<|endoftext|>"]
    config = WhisperConfig(
        vocab_size=len(tokenizer),
        num_mel_bins=80,
        d_model=d_model,
        encoder_layers=num_layers,
        decoder_layers=num_layers,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model,
        max_source_positions=1500,
        max_target_positions=64,
        init_std=1.0,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=ids["<|startoftranscript|>"],
        begin_suppress_tokens=[eot],
        suppress_tokens=[ids[t] for t in specials[1:]],
    )
    generation = GenerationConfig(
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=ids["<|startoftranscript|>"],
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        max_initial_timestamp_index=50,
        is_multilingual=multilingual,
        begin_suppress_tokens=[eot],
        suppress_tokens=[ids[t] for t in specials[1:]],
    )
    if multilingual:
        generation.lang_to_id = {
            f"<|{lang}|>": ids[f"<|{lang}|>"] for lang in WHISPER_LANGUAGES
        }
        generation.task_to_id = {
            t: ids[f"<|{t}|>"] for t in ("transcribe", "translate")
        }
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = generation
    model.save_pretrained(path)
    WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer
    ).save_pretrained(path)
    return path
