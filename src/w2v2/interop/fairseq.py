"""fairseq wav2vec 2.0 checkpoints (pre-trained ``Wav2Vec2Model`` and CTC fine-tuned
``Wav2VecCtc``) to w2v2, without fairseq or omegaconf (see :mod:`.unpickler`).

A checkpoint holds ``model`` (the state dict) and the configuration as ``cfg`` (hydra era) or
``args`` (argparse era). Fine-tuned checkpoints prefix the encoder with ``w2v_encoder.w2v_model.``,
keep the CTC head in ``w2v_encoder.proj`` and nest the pre-training configuration in ``w2v_args``.
"""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from ..config import W2V2Config
from .keys import rename_state
from .model_dir import PREFIX
from .unpickler import load_checkpoint, plain

FINETUNED = "w2v_encoder.w2v_model."
HEAD = "w2v_encoder.proj."
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # fairseq Dictionary: bos (the CTC blank), pad, eos, unk
SYMBOLS_RENAMED = ("<pad>", "<s>", "</s>", "<unk>")  # the same indices, the blank named as in transformers
LIBRISPEECH_LETTERS = "| E T A O N I H S R D L U M W C F G Y P B V K ' X J Q Z".split()

# fairseq's Wav2Vec2Config defaults, for fields an older checkpoint may not carry
_DEFAULTS: dict[str, Any] = {
    "extractor_mode": "default", "conv_feature_layers": "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] * 2",
    "conv_bias": False, "encoder_embed_dim": 768, "encoder_layers": 12, "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12, "layer_norm_first": False, "conv_pos": 128, "conv_pos_groups": 16,
    "dropout": 0.1, "attention_dropout": 0.1, "activation_dropout": 0.0, "dropout_input": 0.0,
    "dropout_features": 0.0, "encoder_layerdrop": 0.0, "latent_vars": 320, "latent_groups": 2, "latent_dim": 0,
    "final_dim": 0, "latent_temp": (2.0, 0.5, 0.999995), "quantize_targets": False,
    "mask_prob": 0.65, "mask_length": 10, "mask_channel_prob": 0.0, "mask_channel_length": 10,
    "num_negatives": 100, "logit_temp": 0.1, "feature_grad_mult": 1.0,
}
# (field, value fairseq must have for w2v2 to compute the same function)
_REQUIRED = [("layer_type", "transformer"), ("activation_fn", "gelu"), ("pos_conv_depth", 1),
             ("conv_pos_batch_norm", False), ("target_glu", False), ("quantizer_depth", 1),
             ("crop_seq_to_multiple", 1), ("quantize_input", False)]
# training-only options w2v2 does not implement: warned about, then ignored
_TRAINING_ONLY = [("mask_selection", "static"), ("mask_channel_selection", "static"), ("no_mask_overlap", False),
                  ("no_mask_channel_overlap", False), ("mask_channel_before", False),
                  ("negatives_from_everywhere", False), ("cross_sample_negatives", 0), ("codebook_negatives", 0),
                  ("require_same_masks", True), ("mask_dropout", 0.0)]
_RENAMES = [  # (fairseq regex, w2v2 template) for keys of the pre-training model
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", PREFIX + r"feature_extractor.conv_layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2(?:\.1)?\.(weight|bias)",
     PREFIX + r"feature_extractor.conv_layers.\1.norm.\2"),
    (r"layer_norm\.(weight|bias)", PREFIX + r"feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", PREFIX + r"feature_projection.projection.\1"),
    (r"encoder\.pos_conv\.0\.(weight_g|weight_v|bias)", PREFIX + r"encoder.pos_conv.\1"),
    (r"encoder\.pos_conv\.0\.parametrizations\.weight\.original0", PREFIX + "encoder.pos_conv.weight_g"),
    (r"encoder\.pos_conv\.0\.parametrizations\.weight\.original1", PREFIX + "encoder.pos_conv.weight_v"),
    (r"encoder\.layers\.(\d+)\.self_attn\.in_proj_(weight|bias)", PREFIX + r"encoder.layers.\1.attention.qkv.\2"),
    (r"encoder\.layers\.(\d+)\.self_attn\.out_proj\.(.+)", PREFIX + r"encoder.layers.\1.attention.out_proj.\2"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(.+)", PREFIX + r"encoder.layers.\1.layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc1\.(.+)", PREFIX + r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"encoder\.layers\.(\d+)\.fc2\.(.+)", PREFIX + r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(.+)", PREFIX + r"encoder.layers.\1.final_layer_norm.\2"),
    (r"encoder\.layer_norm\.(.+)", PREFIX + r"encoder.layer_norm.\1"),
    (r"mask_emb", PREFIX + "mask_emb"),
    (r"quantizer\.vars", "quantizer.codevectors"),
    (r"(quantizer\.weight_proj|project_q|final_proj)\.(weight|bias)", r"\1.\2"),
]
_QKV = r"encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)"
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")
_MAX_ITEMS = 10_000


def parse_literal(text: str) -> Any:
    """Value of fairseq's list-valued strings such as ``"[(512, 10, 5)] + [(512, 3, 2)] * 4"`` or
    ``"(2, 0.5, 0.999995)"``: numbers, lists, tuples, ``+`` and ``* int``; nothing is evaluated."""

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Add) and type(left) is type(right) and isinstance(left, (list, tuple)):
                return left + right
            if isinstance(node.op, ast.Mult) and isinstance(left, (list, tuple)) and type(right) is int:
                if len(left) * right > _MAX_ITEMS:
                    raise ValueError("list too long")
                return left * right
        raise ValueError(f"unsupported syntax {ast.dump(node)[:60]}")

    try:
        return value(ast.parse(text.strip(), mode="eval").body)
    except (SyntaxError, ValueError, RecursionError) as e:
        raise ValueError(f"cannot parse {text!r}: {e}") from e


def _literal(value: Any) -> Any:
    return parse_literal(value) if isinstance(value, str) else value


def resolve_interpolations(node: Any, root: dict, depth: int = 0) -> Any:
    """Replace omegaconf ``${a.b}`` strings by the value at that path of ``root``; an entry whose
    reference cannot be resolved is dropped (the field's default applies)."""
    if isinstance(node, dict):
        out = {k: resolve_interpolations(v, root, depth) for k, v in node.items()}
        return {k: v for k, v in out.items() if not (isinstance(v, str) and _INTERPOLATION.fullmatch(v))}
    if isinstance(node, list):
        return [resolve_interpolations(v, root, depth) for v in node]
    m = _INTERPOLATION.fullmatch(node) if isinstance(node, str) else None
    if m is None or depth > 8:
        return node
    target: Any = root
    for part in m[1].split("."):
        if not isinstance(target, dict) or part not in target:
            return node
        target = target[part]
    return resolve_interpolations(target, root, depth + 1)


def _sections(config: dict) -> tuple[dict, dict, dict]:
    """(model, task, criterion) of a hydra config, or the flat argparse namespace three times."""
    if isinstance(config.get("model"), dict):
        return config["model"], config.get("task") or {}, config.get("criterion") or {}
    return config, config, config


def _model_name(config: dict) -> str | None:
    model = _sections(config)[0]
    return model.get("_name", model.get("arch"))


def check_supported(model: dict, source: str) -> None:
    for key, want in _REQUIRED:
        if model.get(key, want) != want:
            raise ValueError(f"{source}: fairseq {key}={model[key]!r} is not implemented by w2v2 (needs {want!r})")
    ignored = [f"{k}={model[k]!r}" for k, default in _TRAINING_ONLY if model.get(k, default) != default]
    if ignored:
        warnings.warn(f"{source}: fairseq training options not implemented by w2v2, ignored: {', '.join(ignored)}",
                      stacklevel=3)


def loss_weights(criterion: dict, extractor_mode: str) -> tuple[float, float]:
    """(diversity, feature penalty) weights of fairseq's Wav2vecCriterion (one weight applies to
    both; none means no extra loss); without them in the checkpoint, those of fairseq's released
    configs (BASE [0.1, 10], LV60 layer-norm [0.1, 0])."""
    if criterion.get("_name", criterion.get("criterion")) != "wav2vec" or "loss_weights" not in criterion:
        return 0.1, (0.0 if extractor_mode == "layer" else 10.0)
    raw = criterion["loss_weights"]
    weights = [float(w) for w in _literal(raw)] if raw not in (None, "None") else []
    if not weights:
        return 0.0, 0.0
    return weights[0], weights[1] if len(weights) > 1 else weights[0]


def config_from_fairseq(pretrain: dict, finetune: dict | None = None, source: str = "fairseq") -> W2V2Config:
    """W2V2Config from a fairseq configuration (hydra ``cfg`` or argparse ``args``, as plain dicts):
    ``pretrain`` is the pre-training one (for fine-tuned checkpoints ``w2v_args``), ``finetune``
    the fine-tuning one (see :func:`apply_finetuning`)."""
    model, task, criterion = _sections(pretrain)
    check_supported(model, source)

    def get(key: str) -> Any:
        return model.get(key, _DEFAULTS[key])

    modes = {"default": "group", "layer_norm": "layer"}
    if get("extractor_mode") not in modes:
        raise ValueError(f"{source}: unknown fairseq extractor_mode {get('extractor_mode')!r}")
    mode = modes[get("extractor_mode")]
    conv = parse_literal(get("conv_feature_layers"))
    if not all(isinstance(c, (list, tuple)) and len(c) == 3 for c in conv):
        raise ValueError(f"{source}: conv_feature_layers must list (dim, kernel, stride) triples")
    div_w, pen_w = loss_weights(criterion, mode)
    try:
        cfg = W2V2Config(
            conv_layers=tuple((int(c), int(k), int(s)) for c, k, s in conv), extractor_mode=mode,
            conv_bias=bool(get("conv_bias")), encoder_embed_dim=int(get("encoder_embed_dim")),
            encoder_layers=int(get("encoder_layers")), encoder_ffn_embed_dim=int(get("encoder_ffn_embed_dim")),
            encoder_attention_heads=int(get("encoder_attention_heads")), layer_norm_first=bool(get("layer_norm_first")),
            conv_pos=int(get("conv_pos")), conv_pos_groups=int(get("conv_pos_groups")), layer_norm_eps=1e-5,
            dropout=float(get("dropout")), attention_dropout=float(get("attention_dropout")),
            activation_dropout=float(get("activation_dropout")), dropout_input=float(get("dropout_input")),
            dropout_features=float(get("dropout_features")), encoder_layerdrop=float(get("encoder_layerdrop")),
            latent_vars=int(get("latent_vars")), latent_groups=int(get("latent_groups")),
            latent_dim=int(get("latent_dim")), final_dim=int(get("final_dim")) or int(get("encoder_embed_dim")),
            latent_temp=tuple(float(t) for t in _literal(get("latent_temp"))),
            quantize_targets=bool(get("quantize_targets")),
            mask_prob=float(get("mask_prob")), mask_length=int(get("mask_length")),
            mask_channel_prob=float(get("mask_channel_prob")), mask_channel_length=int(get("mask_channel_length")),
            num_negatives=int(get("num_negatives")), logit_temp=float(get("logit_temp")),
            diversity_weight=div_w, feature_pen_weight=pen_w, feature_grad_mult=float(get("feature_grad_mult")),
            normalize=bool(task.get("normalize", model.get("normalize", False))), origin="fairseq",
        )
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from e
    if finetune is not None:
        apply_finetuning(cfg, finetune, source)
    return cfg


def apply_finetuning(cfg: W2V2Config, finetune: dict, source: str) -> None:
    """The fine-tuning config's dropouts, LayerDrop, feature-encoder gradient and masks (applied only
    with ``apply_mask``) replace the pre-training ones, as in fairseq's ``Wav2VecEncoder``."""
    ft, ft_task, _ = _sections(finetune)
    check_supported(ft, source)
    masked = bool(ft.get("apply_mask", False))
    cfg.dropout, cfg.attention_dropout = float(ft.get("dropout", 0.0)), float(ft.get("attention_dropout", 0.0))
    cfg.activation_dropout = float(ft.get("activation_dropout", 0.0))
    cfg.dropout_input, cfg.final_dropout = float(ft.get("dropout_input", 0.0)), float(ft.get("final_dropout", 0.0))
    cfg.encoder_layerdrop = float(ft.get("layerdrop", 0.0))
    cfg.feature_grad_mult = float(ft.get("feature_grad_mult", 0.0))
    cfg.mask_prob = float(ft.get("mask_prob", 0.5)) if masked else 0.0
    cfg.mask_length = int(ft.get("mask_length", 10))
    cfg.mask_channel_prob = float(ft.get("mask_channel_prob", 0.0)) if masked else 0.0
    cfg.mask_channel_length = int(ft.get("mask_channel_length", 10))
    cfg.normalize = bool(ft_task.get("normalize", ft.get("normalize", cfg.normalize)))
    try:
        cfg.validate()
    except ValueError as e:
        raise ValueError(f"{source}: fine-tuning config: {e}") from e


def state_from_fairseq(sd: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """fairseq Wav2Vec2Model keys -> w2v2 keys; q/k/v fused into one projection."""
    return rename_state(sd, _RENAMES, _QKV, source)


def read_dictionary(path: str | Path, size: int) -> dict[str, int]:
    """fairseq's target dictionary (``dict.ltr.txt``: ``SYMBOL COUNT`` lines after the 4 specials),
    renamed for w2v2: the CTC blank (fairseq's ``<s>``, index 0) is called ``<pad>`` as in
    transformers, and index 1 ``<s>``; no index moves."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read the fairseq dictionary: {e}") from e
    symbols = list(SYMBOLS_RENAMED)
    for n, line in enumerate(lines, 1):
        line = line.rstrip().removesuffix(" #fairseq:overwrite")
        word, _, count = line.rpartition(" ")
        if not word or not count.isdigit():
            raise ValueError(f"{path}:{n}: expected 'SYMBOL COUNT', got {line!r}")
        if word in symbols:
            raise ValueError(f"{path}:{n}: duplicate symbol {word!r} (a vocabulary maps each token to one index)")
        symbols.append(word)
    if len(symbols) != size:
        raise ValueError(f"{path}: 4 special symbols + {len(symbols) - 4} lines = {len(symbols)} tokens, but the "
                         f"CTC head has {size} outputs")
    return {s: i for i, s in enumerate(symbols)}


def default_vocab(size: int, source: str) -> dict[str, int]:
    if size != len(SPECIALS) + len(LIBRISPEECH_LETTERS):
        raise ValueError(f"{source}: the CTC head has {size} outputs; give the fine-tuning dictionary "
                         "with --dict dict.ltr.txt")
    warnings.warn(f"{source}: no --dict given; assuming fairseq's LibriSpeech letter dictionary "
                  f"({' '.join(LIBRISPEECH_LETTERS)})", stacklevel=3)
    return {s: i for i, s in enumerate(list(SYMBOLS_RENAMED) + LIBRISPEECH_LETTERS)}


def checkpoint_config(ckpt: Any, source: str) -> dict:
    """The configuration of a fairseq checkpoint as plain data (``cfg``, or the legacy ``args``)."""
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise ValueError(f"{source}: no 'model' state dict: not a fairseq checkpoint")
    config = plain(ckpt.get("cfg") or ckpt.get("args"))
    if not isinstance(config, dict):
        raise ValueError(f"{source}: neither 'cfg' nor 'args': not a fairseq checkpoint")
    name = _model_name(config)
    if name not in (None, "wav2vec2", "wav2vec_ctc") or any(k.startswith("decoder.") for k in ckpt["model"]):
        raise ValueError(f"{source}: fairseq model {name!r} is not wav2vec 2.0 (pre-trained or CTC)")
    return config


def finetuned_state(config: dict, sd: dict[str, torch.Tensor], source: str
                    ) -> tuple[W2V2Config, dict[str, torch.Tensor]]:
    """Config and w2v2 state of a ``Wav2VecCtc`` checkpoint: the encoder under ``w2v_encoder.w2v_model.``
    (configured by ``w2v_args``), the head ``w2v_encoder.proj`` as ``lm_head``."""
    model_cfg = _sections(config)[0]
    inner = model_cfg.get("w2v_args")
    if not isinstance(inner, dict):
        raise ValueError(f"{source}: fine-tuned checkpoint without w2v_args (the pre-training config)")
    cfg = config_from_fairseq(resolve_interpolations(inner, inner), resolve_interpolations(config, config), source)
    head = {k[len(HEAD):]: v for k, v in sd.items() if k.startswith(HEAD)}
    stray = [k for k in sd if not k.startswith((FINETUNED, HEAD))]
    if stray or not head:
        raise ValueError(f"{source}: not a CTC checkpoint ({'no w2v_encoder.proj' if not head else stray[:3]})")
    out = state_from_fairseq({k[len(FINETUNED):]: v for k, v in sd.items() if k.startswith(FINETUNED)}, source)
    blank_weight = float(model_cfg.get("blank_weight") or 0.0)
    if blank_weight and model_cfg.get("blank_mode", "add") != "add":
        raise ValueError(f"{source}: blank_mode={model_cfg['blank_mode']!r} is not supported")
    out["lm_head.weight"], out["lm_head.bias"] = head["weight"], head["bias"].clone()
    out["lm_head.bias"][0] += blank_weight  # fairseq adds it to the blank logit at inference
    cfg.vocab_size = head["weight"].shape[0]
    return cfg, out


def import_fairseq(path: str | Path, dict_path: str | Path | None = None
                   ) -> tuple[W2V2Config, dict[str, torch.Tensor], dict[str, int] | None]:
    """Read a fairseq checkpoint -> (config, w2v2 state dict, vocab with the blank at 0 or None)."""
    source = str(path)
    ckpt = load_checkpoint(path)
    config = checkpoint_config(ckpt, source)
    sd = {k: v for k, v in ckpt["model"].items() if isinstance(v, torch.Tensor)}
    if any(k.startswith("w2v_encoder.") for k in sd):
        cfg, sd = finetuned_state(config, sd, source)
        vocab = read_dictionary(dict_path, cfg.vocab_size) if dict_path else default_vocab(cfg.vocab_size, source)
    else:
        cfg = config_from_fairseq(resolve_interpolations(config, config), None, source)
        sd, vocab = state_from_fairseq(sd, source), None
    proj = PREFIX + "feature_projection.projection."
    if proj + "weight" not in sd:  # fairseq has no post_extract_proj when the widths agree
        d = cfg.encoder_embed_dim
        sd[proj + "weight"], sd[proj + "bias"] = torch.eye(d), torch.zeros(d)
    cfg.extra["fairseq"] = {"file": Path(path).name, "model": _model_name(config),
                            "config": "cfg" if ckpt.get("cfg") else "args"}
    return cfg, sd, vocab
