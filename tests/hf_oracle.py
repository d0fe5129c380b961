"""Small randomly initialised transformers models (the parity oracle; test-only dependency)."""

from __future__ import annotations

import torch

transformers = __import__("pytest").importorskip("transformers")


def hf_config(layout: str, vocab_size: int = 12, **kw):
    layer = layout == "layer"
    return transformers.Wav2Vec2Config(
        hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=96,
        conv_dim=(32,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
        feat_extract_norm=layout, conv_bias=layer, do_stable_layer_norm=layer,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        num_codevectors_per_group=24, num_codevector_groups=2, codevector_dim=32, proj_codevector_dim=24,
        num_negatives=10, vocab_size=vocab_size, pad_token_id=0, layerdrop=0.0, **kw)


def build(cls_name: str, layout: str, seed: int = 0, **kw):
    torch.manual_seed(seed)
    model = getattr(transformers, cls_name)(hf_config(layout, **kw))
    with torch.no_grad():  # make every parameter non-trivial (norms and biases start at 1 / 0)
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def padded_batch(lengths=(16000, 12000, 9000), seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), max(lengths))
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        x[i, :n] = torch.randn(n, generator=g)
        mask[i, :n] = 1
    return x, mask, torch.tensor(lengths)
