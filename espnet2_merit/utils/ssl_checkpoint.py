"""Local WavLM checkpoints with random weights, loadable offline by s3prl.

s3prl's ``wavlm_local`` upstream reads ``torch.save({"cfg": ..., "model": ...})``.
Tests, the demo and the benchmarks use these to get real WavLM computation (tiny, or
at the Base+ / Large shapes) without any download.
"""

from pathlib import Path
from typing import Dict, Union

import torch

# Shapes of the public WavLM releases; "tiny" is ours for CPU tests. All use the
# layer-norm feature extractor: the group-norm one (WavLM Base/Base+) normalises over
# the padded length, so its outputs depend on the batch.
WAVLM_SHAPES: Dict[str, dict] = {
    "tiny": dict(
        encoder_layers=2,
        encoder_embed_dim=64,
        encoder_ffn_embed_dim=128,
        encoder_attention_heads=2,
        conv_feature_layers="[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2",
        conv_pos=16,
        conv_pos_groups=4,
        num_buckets=32,
        max_distance=80,
    ),
    "base_plus": dict(
        encoder_layers=12,
        encoder_embed_dim=768,
        encoder_ffn_embed_dim=3072,
        encoder_attention_heads=12,
    ),
    "large": dict(
        encoder_layers=24,
        encoder_embed_dim=1024,
        encoder_ffn_embed_dim=4096,
        encoder_attention_heads=16,
        layer_norm_first=True,
        normalize=True,
    ),
}

_COMMON = dict(
    extractor_mode="layer_norm",
    conv_bias=True,
    relative_position_embedding=True,
    gru_rel_pos=True,
    encoder_layerdrop=0.0,
    dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    dropout_input=0.0,
    dropout_features=0.0,
)


def make_wavlm_checkpoint(
    path: Union[str, Path], shape: str = "tiny", seed: int = 0
) -> Path:
    """Write a randomly initialised WavLM checkpoint for s3prl's ``wavlm_local``.

    Args:
        path: Output file (``.pt``); parent directories are created.
        shape: One of ``WAVLM_SHAPES`` ("tiny", "base_plus", "large").
        seed: Seed of the random initialisation (same seed, same weights).

    Returns:
        The path written.
    """
    from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

    if shape not in WAVLM_SHAPES:
        raise ValueError(
            f"unknown WavLM shape '{shape}': use one of {list(WAVLM_SHAPES)}"
        )
    cfg = {**_COMMON, **WAVLM_SHAPES[shape]}
    torch.manual_seed(seed)
    model = WavLM(WavLMConfig(cfg))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"cfg": cfg, "model": model.state_dict()}, tmp)
    tmp.replace(path)
    return path
