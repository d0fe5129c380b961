"""Presets as factory functions with literal values (paper section 4.2, table 5; fairseq configs)."""

from __future__ import annotations

from collections.abc import Callable

from ..config import BASE_CONV, W2V2Config


def tiny() -> W2V2Config:
    """A CPU-sized model for development and the demo: the BASE layout (group-norm encoder, post-LN
    Transformer, 20 ms frames, 400-sample receptive field) at a fraction of the width."""
    return W2V2Config(
        conv_layers=((128, 10, 5),) + ((128, 3, 2),) * 4 + ((128, 2, 2),) * 2,
        extractor_mode="group", conv_bias=False,
        encoder_embed_dim=256, encoder_layers=4, encoder_ffn_embed_dim=1024, encoder_attention_heads=4,
        layer_norm_first=False, conv_pos=128, conv_pos_groups=16,
        dropout=0.1, attention_dropout=0.1, activation_dropout=0.0, dropout_input=0.1, dropout_features=0.1,
        encoder_layerdrop=0.0,
        latent_vars=64, latent_groups=2, final_dim=128, latent_temp=(2.0, 0.5, 0.9995),
        mask_prob=0.65, mask_length=10, num_negatives=100, logit_temp=0.1,
        diversity_weight=0.1, feature_pen_weight=10.0, feature_grad_mult=0.1, normalize=False,
    )


def base() -> W2V2Config:
    """BASE (section 4.2): 12 blocks, d=768, FFN 3072; fairseq's 12 heads; LayerDrop 0.05."""
    return W2V2Config(
        conv_layers=BASE_CONV, extractor_mode="group", conv_bias=False,
        encoder_embed_dim=768, encoder_layers=12, encoder_ffn_embed_dim=3072, encoder_attention_heads=12,
        layer_norm_first=False, conv_pos=128, conv_pos_groups=16,
        dropout=0.1, attention_dropout=0.1, activation_dropout=0.0, dropout_input=0.1, dropout_features=0.1,
        encoder_layerdrop=0.05,
        latent_vars=320, latent_groups=2, final_dim=256, latent_temp=(2.0, 0.5, 0.999995),
        mask_prob=0.65, mask_length=10, num_negatives=100, logit_temp=0.1,
        diversity_weight=0.1, feature_pen_weight=10.0, feature_grad_mult=0.1, normalize=False,
    )


def large() -> W2V2Config:
    """LARGE on LibriSpeech (section 4.2): 24 blocks, d=1024, FFN 4096, 16 heads, LayerDrop 0.2,
    final_dim 768, tau_min 0.1; the BASE encoder layout."""
    return W2V2Config(
        conv_layers=BASE_CONV, extractor_mode="group", conv_bias=False,
        encoder_embed_dim=1024, encoder_layers=24, encoder_ffn_embed_dim=4096, encoder_attention_heads=16,
        layer_norm_first=False, conv_pos=128, conv_pos_groups=16,
        dropout=0.1, attention_dropout=0.1, activation_dropout=0.0, dropout_input=0.1, dropout_features=0.1,
        encoder_layerdrop=0.2,
        latent_vars=320, latent_groups=2, final_dim=768, latent_temp=(2.0, 0.1, 0.999995),
        mask_prob=0.65, mask_length=10, num_negatives=100, logit_temp=0.1,
        diversity_weight=0.1, feature_pen_weight=10.0, feature_grad_mult=0.1, normalize=False,
    )


def large_lv60() -> W2V2Config:
    """LARGE on LibriVox (fairseq wav2vec2_large_librivox): layer-norm conv encoder with bias,
    pre-LN blocks, normalised input, no feature penalty, full feature-encoder gradient."""
    return W2V2Config(
        conv_layers=BASE_CONV, extractor_mode="layer", conv_bias=True,
        encoder_embed_dim=1024, encoder_layers=24, encoder_ffn_embed_dim=4096, encoder_attention_heads=16,
        layer_norm_first=True, conv_pos=128, conv_pos_groups=16,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, dropout_input=0.0, dropout_features=0.0,
        encoder_layerdrop=0.0,
        latent_vars=320, latent_groups=2, final_dim=768, latent_temp=(2.0, 0.1, 0.999995),
        mask_prob=0.65, mask_length=10, num_negatives=100, logit_temp=0.1,
        diversity_weight=0.1, feature_pen_weight=0.0, feature_grad_mult=1.0, normalize=True,
    )


def xlsr_300m() -> W2V2Config:
    """XLS-R 300M (Babu et al. 2021): the LV60 layout, LayerDrop 0.1."""
    return W2V2Config(
        conv_layers=BASE_CONV, extractor_mode="layer", conv_bias=True,
        encoder_embed_dim=1024, encoder_layers=24, encoder_ffn_embed_dim=4096, encoder_attention_heads=16,
        layer_norm_first=True, conv_pos=128, conv_pos_groups=16,
        dropout=0.1, attention_dropout=0.0, activation_dropout=0.0, dropout_input=0.0, dropout_features=0.0,
        encoder_layerdrop=0.1,
        latent_vars=320, latent_groups=2, final_dim=768, latent_temp=(2.0, 0.1, 0.999995),
        mask_prob=0.65, mask_length=10, num_negatives=100, logit_temp=0.1,
        diversity_weight=0.1, feature_pen_weight=0.0, feature_grad_mult=1.0, normalize=True,
    )


PRESETS: dict[str, Callable[[], W2V2Config]] = {
    "tiny": tiny, "base": base, "large": large, "large_lv60": large_lv60, "xlsr_300m": xlsr_300m,
}


def preset(name: str) -> W2V2Config:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    cfg = PRESETS[name]()
    cfg.origin = f"preset:{name}"
    return cfg
