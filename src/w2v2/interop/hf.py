"""Hugging Face transformers checkpoints (``save_pretrained`` layout) to and from w2v2.

Reads config.json + model.safetensors (or pytorch_model.bin) of Wav2Vec2Model,
Wav2Vec2ForPreTraining and Wav2Vec2ForCTC (with vocab.json); writes a directory that
``from_pretrained`` loads. transformers itself is not needed for either direction; a hub id
(``facebook/wav2vec2-base``) is fetched into the Hugging Face cache by ``huggingface_hub``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..config import W2V2Config
from .keys import rename_state
from .model_dir import PREFIX, atomic_write, full_state_dict

_POS = "encoder.pos_conv_embed.conv."
_PLAIN = [  # (HF regex, w2v2 template), applied to keys without the ``wav2vec2.`` prefix
    (r"encoder\.pos_conv_embed\.conv\.(?:weight_g|parametrizations\.weight\.original0)",
     PREFIX + "encoder.pos_conv.weight_g"),
    (r"encoder\.pos_conv_embed\.conv\.(?:weight_v|parametrizations\.weight\.original1)",
     PREFIX + "encoder.pos_conv.weight_v"),
    (r"encoder\.pos_conv_embed\.conv\.bias", PREFIX + "encoder.pos_conv.bias"),
    (r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.(.+)", PREFIX + r"feature_extractor.conv_layers.\1.norm.\2"),
    (r"(feature_extractor|feature_projection|encoder)\.(.+)", PREFIX + r"\1.\2"),
    (r"masked_spec_embed", PREFIX + "mask_emb"),
    (r"project_hid\.(.+)", r"final_proj.\1"),
    (r"(quantizer|project_q|lm_head)\.(.+)", r"\1.\2"),
]
_QKV = r"encoder\.layers\.(\d+)\.attention\.([qkv])_proj\.(weight|bias)"


def config_from_hf(hf: dict[str, Any], normalize: bool | None = None) -> W2V2Config:
    """W2V2Config from a transformers Wav2Vec2Config dict; refuses what w2v2 does not implement."""
    if hf.get("model_type", "wav2vec2") != "wav2vec2":
        raise ValueError(f"model_type {hf.get('model_type')!r} is not wav2vec2")
    for key, want in (("hidden_act", "gelu"), ("feat_extract_activation", "gelu"), ("add_adapter", False)):
        if hf.get(key, want) != want:
            raise ValueError(f"unsupported transformers config: {key}={hf[key]!r} (w2v2 implements {want!r})")
    layout = hf.get("feat_extract_norm", "group")
    conv = tuple(zip(hf.get("conv_dim", [512] * 7), hf.get("conv_kernel", [10, 3, 3, 3, 3, 2, 2]),
                     hf.get("conv_stride", [5, 2, 2, 2, 2, 2, 2])))
    return W2V2Config(
        conv_layers=tuple((int(c), int(k), int(s)) for c, k, s in conv), extractor_mode=layout,
        conv_bias=bool(hf.get("conv_bias", False)), encoder_embed_dim=hf.get("hidden_size", 768),
        encoder_layers=hf.get("num_hidden_layers", 12), encoder_ffn_embed_dim=hf.get("intermediate_size", 3072),
        encoder_attention_heads=hf.get("num_attention_heads", 12),
        layer_norm_first=bool(hf.get("do_stable_layer_norm", False)),
        conv_pos=hf.get("num_conv_pos_embeddings", 128), conv_pos_groups=hf.get("num_conv_pos_embedding_groups", 16),
        layer_norm_eps=hf.get("layer_norm_eps", 1e-5), dropout=hf.get("hidden_dropout", 0.1),
        attention_dropout=hf.get("attention_dropout", 0.1), activation_dropout=hf.get("activation_dropout", 0.1),
        dropout_input=hf.get("feat_proj_dropout", 0.0), dropout_features=hf.get("feat_quantizer_dropout", 0.0),
        encoder_layerdrop=hf.get("layerdrop", 0.1), final_dropout=hf.get("final_dropout", 0.1),
        latent_vars=hf.get("num_codevectors_per_group", 320), latent_groups=hf.get("num_codevector_groups", 2),
        latent_dim=hf.get("codevector_dim", 256), final_dim=hf.get("proj_codevector_dim", 256),
        mask_prob=hf.get("mask_time_prob", 0.05), mask_length=hf.get("mask_time_length", 10),
        mask_min_masks=hf.get("mask_time_min_masks", 2), mask_channel_prob=hf.get("mask_feature_prob", 0.0),
        mask_channel_length=hf.get("mask_feature_length", 10), num_negatives=hf.get("num_negatives", 100),
        logit_temp=hf.get("contrastive_logits_temperature", 0.1),
        diversity_weight=hf.get("diversity_loss_weight", 0.1), feature_pen_weight=0.0,
        normalize=(layout == "layer") if normalize is None else normalize,
        vocab_size=hf.get("vocab_size", 0) if "Wav2Vec2ForCTC" in hf.get("architectures", []) else 0,
        origin="transformers",
    )


def config_to_hf(cfg: W2V2Config, architecture: str) -> dict[str, Any]:
    return {
        "architectures": [architecture], "model_type": "wav2vec2",
        "conv_dim": [c for c, _, _ in cfg.conv_layers], "conv_kernel": [k for _, k, _ in cfg.conv_layers],
        "conv_stride": [s for _, _, s in cfg.conv_layers], "num_feat_extract_layers": len(cfg.conv_layers),
        "feat_extract_norm": cfg.extractor_mode, "conv_bias": cfg.conv_bias, "feat_extract_activation": "gelu",
        "hidden_size": cfg.encoder_embed_dim, "num_hidden_layers": cfg.encoder_layers,
        "intermediate_size": cfg.encoder_ffn_embed_dim, "num_attention_heads": cfg.encoder_attention_heads,
        "hidden_act": "gelu", "do_stable_layer_norm": cfg.layer_norm_first,
        "num_conv_pos_embeddings": cfg.conv_pos, "num_conv_pos_embedding_groups": cfg.conv_pos_groups,
        "layer_norm_eps": cfg.layer_norm_eps, "hidden_dropout": cfg.dropout,
        "attention_dropout": cfg.attention_dropout, "activation_dropout": cfg.activation_dropout,
        "feat_proj_dropout": cfg.dropout_input, "feat_quantizer_dropout": cfg.dropout_features,
        "layerdrop": cfg.encoder_layerdrop, "final_dropout": cfg.final_dropout,
        "num_codevectors_per_group": cfg.latent_vars, "num_codevector_groups": cfg.latent_groups,
        "codevector_dim": cfg.codevector_dim, "proj_codevector_dim": cfg.final_dim,
        "mask_time_prob": cfg.mask_prob, "mask_time_length": cfg.mask_length,
        "mask_time_min_masks": cfg.mask_min_masks, "mask_feature_prob": cfg.mask_channel_prob,
        "mask_feature_length": cfg.mask_channel_length, "num_negatives": cfg.num_negatives,
        "contrastive_logits_temperature": cfg.logit_temp, "diversity_loss_weight": cfg.diversity_weight,
        "vocab_size": max(cfg.vocab_size, 32), "pad_token_id": 0, "ctc_zero_infinity": True,
        "ctc_loss_reduction": "sum", "apply_spec_augment": True, "add_adapter": False,
    }


def state_from_hf(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename transformers keys to w2v2's; fuse q/k/v into one projection; resolve weight norm."""
    plain = {k[len(PREFIX):] if k.startswith(PREFIX) else k: v for k, v in sd.items()}
    return rename_state(plain, _PLAIN, _QKV, "transformers checkpoint")


def state_to_hf(sd: dict[str, torch.Tensor], encoder_prefix: str) -> dict[str, torch.Tensor]:
    """w2v2 keys -> transformers keys (``encoder_prefix`` is "wav2vec2." for heads, "" for the bare model)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.startswith(PREFIX):
            k = key[len(PREFIX):]
            k = re.sub(r"^(feature_extractor\.conv_layers\.\d+)\.norm\.", r"\1.layer_norm.", k)
            k = {"mask_emb": "masked_spec_embed"}.get(k, k)
            k = k.replace("encoder.pos_conv.weight_g", _POS + "parametrizations.weight.original0")
            k = k.replace("encoder.pos_conv.weight_v", _POS + "parametrizations.weight.original1")
            k = k.replace("encoder.pos_conv.bias", _POS + "bias")
            m = re.fullmatch(r"(encoder\.layers\.\d+\.attention)\.qkv\.(weight|bias)", k)
            if m:
                for name, part in zip("qkv", value.chunk(3, dim=0)):
                    out[f"{encoder_prefix}{m[1]}.{name}_proj.{m[2]}"] = part.contiguous()
                continue
            out[encoder_prefix + k] = value
        elif key.startswith("final_proj."):
            out["project_hid." + key[len("final_proj."):]] = value
        elif key.startswith("project_inp.") or key.startswith("input_quantizer."):
            raise ValueError("transformers has no quantized-input wav2vec 2.0: cannot export this ablation model")
        elif key.startswith(("units.", "unit_embeddings")):
            raise ValueError("transformers' Wav2Vec2ForPreTraining has no unit targets (target_units, a non-paper "
                             "option): cannot export this pre-training model; its fine-tuned CTC models export")
        else:
            out[key] = value
    return out


def read_hf_weights(src: Path) -> dict[str, torch.Tensor]:
    if (src / "model.safetensors").is_file():
        return load_file(str(src / "model.safetensors"))
    if (src / "pytorch_model.bin").is_file():
        return torch.load(src / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{src}: no model.safetensors or pytorch_model.bin")


HUB_FILES = ("config.json", "preprocessor_config.json", "vocab.json")  # what import_hf reads besides the weights
HUB_WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # in the order read_hf_weights prefers them


def hub_snapshot(repo_id: str) -> Path:
    """The Hugging Face cache folder of ``repo_id`` with its config and weights, downloaded if
    needed (one weights file: safetensors where the repository has it)."""
    try:
        from huggingface_hub import constants, snapshot_download
    except ImportError as e:
        raise ValueError(f"{repo_id}: not a local folder; a hub id needs huggingface_hub "
                         "(pip install 'w2v2[hub]')") from e
    try:
        for weights in HUB_WEIGHTS:
            folder = Path(snapshot_download(repo_id, allow_patterns=[*HUB_FILES, weights]))
            if (folder / weights).is_file():
                return folder
    except FileNotFoundError as e:  # LocalEntryNotFoundError: offline or unreachable, and not cached
        raise FileNotFoundError(f"{repo_id}: not a local folder, and not in the Hugging Face cache "
                                f"({constants.HF_HUB_CACHE}) while the hub cannot be reached (HF_HUB_OFFLINE=1 or "
                                "no network): fetch it once online, or give a local save_pretrained folder") from e
    except ValueError as e:  # HFValidationError
        raise FileNotFoundError(f"{repo_id}: no such folder (a transformers save_pretrained folder, with "
                                "config.json), and not a hub id (NAME or ORG/NAME)") from e
    except OSError as e:  # HTTP errors: no such repository, gated, revision not found
        raise ValueError(f"{repo_id}: not a local folder, and the hub refused it: {e}") from e
    raise FileNotFoundError(f"{repo_id}: the hub repository has neither {' nor '.join(HUB_WEIGHTS)}")


def import_hf(src: str | Path) -> tuple[W2V2Config, dict[str, torch.Tensor], dict[str, int] | None]:
    """Read a transformers directory, or a hub id fetched into the Hugging Face cache ->
    (config, w2v2 state dict, vocab with the blank at 0)."""
    if Path(src).is_file():
        raise ValueError(f"{src}: a file; --from hf reads a save_pretrained folder or a hub id "
                         "(a fairseq checkpoint: --from fairseq)")
    src = Path(src) if Path(src).is_dir() else hub_snapshot(str(src))
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"{src / 'config.json'}: missing (expected a transformers save_pretrained folder)")
    hf = json.loads((src / "config.json").read_text())
    normalize = None
    if (src / "preprocessor_config.json").is_file():
        normalize = json.loads((src / "preprocessor_config.json").read_text()).get("do_normalize")
    sd = state_from_hf(read_hf_weights(src))
    try:
        cfg = config_from_hf(hf, normalize)
    except ValueError as e:
        raise ValueError(f"{src / 'config.json'}: {e}") from e
    vocab = None
    if "lm_head.weight" in sd:
        cfg.vocab_size = sd["lm_head.weight"].shape[0]
        vocab = read_hf_vocab(src, cfg.vocab_size, hf.get("pad_token_id", 0))
        blank = hf.get("pad_token_id", 0)
        if blank:  # w2v2 keeps the CTC blank at index 0
            order = [blank] + [i for i in range(cfg.vocab_size) if i != blank]
            sd["lm_head.weight"] = sd["lm_head.weight"][order]
            sd["lm_head.bias"] = sd["lm_head.bias"][order]
    return cfg, sd, vocab


def read_hf_vocab(src: Path, size: int, blank: int) -> dict[str, int]:
    path = src / "vocab.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: a Wav2Vec2ForCTC checkpoint needs its vocab.json")
    vocab = json.loads(path.read_text())
    if vocab and all(isinstance(v, dict) for v in vocab.values()):  # multilingual: {lang: vocab}
        raise ValueError(f"{path}: multi-language vocabularies are not supported; extract one language")
    tokens = sorted(vocab, key=vocab.get)
    if [vocab[t] for t in tokens] != list(range(len(tokens))) or len(tokens) != size:
        raise ValueError(f"{path}: indices must be 0..{size - 1} to match the CTC head of size {size}")
    order = [tokens[blank]] + [t for i, t in enumerate(tokens) if i != blank]
    return {t: i for i, t in enumerate(order)}


def export_hf(model: torch.nn.Module, cfg: W2V2Config, vocab: dict[str, int] | None, out: str | Path) -> None:
    """Write a transformers directory (config, safetensors, preprocessor config, vocab for CTC)."""
    out = Path(out)
    sd = full_state_dict(model)
    if "lm_head.weight" in sd:
        arch = "Wav2Vec2ForCTC"
    elif "quantizer.codevectors" in sd:
        arch = "Wav2Vec2ForPreTraining"
    else:
        arch = "Wav2Vec2Model"
    hf_sd = state_to_hf(sd, "" if arch == "Wav2Vec2Model" else PREFIX)
    hf_cfg = config_to_hf(cfg, arch)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "model.safetensors", lambda p: save_file(hf_sd, str(p), metadata={"format": "pt"}))
    pre = {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, "sampling_rate": 16000,
           "padding_value": 0.0, "do_normalize": cfg.normalize, "return_attention_mask": cfg.extractor_mode == "layer"}
    files = {"config.json": hf_cfg, "preprocessor_config.json": pre}
    if vocab is not None:
        hf_cfg["vocab_size"] = cfg.vocab_size
        files["vocab.json"] = vocab
        blank = next(t for t, i in vocab.items() if i == 0)
        files["tokenizer_config.json"] = {"tokenizer_class": "Wav2Vec2CTCTokenizer", "pad_token": blank,
                                          "word_delimiter_token": "|", "unk_token": "<unk>" if "<unk>" in vocab else blank,
                                          "do_lower_case": False}
    for name, obj in files.items():
        atomic_write(out / name, lambda p, obj=obj: p.write_text(json.dumps(obj, indent=2, ensure_ascii=False)))
