"""``w2v2 import``, ``export``, ``info`` and ``embed``: what a user does first with a checkpoint."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ..data.audio import load_audio
from ..decode.inference import model_input
from .model_dir import encoder_of, load_model_dir, model_for_state, load_state, save_model_dir


def cmd_import(args: argparse.Namespace) -> None:
    if args.source == "hf":
        from .hf import import_hf

        cfg, sd, vocab = import_hf(args.src)
    else:
        from .fairseq import import_fairseq

        cfg, sd, vocab = import_fairseq(args.src, dict_path=args.dict)
    model = model_for_state(cfg, set(sd))
    load_state(model, sd, str(args.src))
    save_model_dir(model, cfg, args.out, vocab)
    print(f"imported {args.src} ({cfg.origin}) -> {args.out}: {type(model).__name__}, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")


def cmd_export(args: argparse.Namespace) -> None:
    if args.target == "onnx":
        from .onnx import export_model_dir

        export_model_dir(args.model_dir, args.out)
        print(f"exported {args.model_dir} -> {args.out} (ONNX: waveform, lengths -> CTC logits, frame_lengths; "
              "config and vocabulary in its metadata)")
        return
    from .hf import export_hf

    model, cfg, vocab = load_model_dir(args.model_dir)
    export_hf(model, cfg, vocab, args.out)
    print(f"exported {args.model_dir} -> {args.out} (transformers format)")


def describe(model: torch.nn.Module, cfg, vocab) -> str:
    n = sum(p.numel() for p in model.parameters())
    n_enc = sum(p.numel() for p in encoder_of(model).parameters())
    layout = "pre-LN (layer_norm_first)" if cfg.layer_norm_first else "post-LN"
    conv = ", ".join(f"{c}x{k}/{s}" for c, k, s in cfg.conv_layers)
    lines = [
        f"model:        {type(model).__name__}",
        f"origin:       {cfg.origin}",
        f"parameters:   {n:,} ({n / 1e6:.1f}M; encoder {n_enc / 1e6:.1f}M)",
        f"feature enc.: {len(cfg.conv_layers)} conv blocks [{conv}], {cfg.extractor_mode} norm, "
        f"bias={cfg.conv_bias}; stride {cfg.frame_stride} samples, receptive field {cfg.receptive_field}",
        f"transformer:  {cfg.encoder_layers} blocks, d={cfg.encoder_embed_dim}, ffn={cfg.encoder_ffn_embed_dim}, "
        f"{cfg.encoder_attention_heads} heads, {layout}, pos conv {cfg.conv_pos}/{cfg.conv_pos_groups} groups",
        f"quantizer:    G={cfg.latent_groups} x V={cfg.latent_vars}, codevector dim {cfg.codevector_dim}, "
        f"final dim {cfg.final_dim}",
        f"input:        16 kHz mono, {'normalised per utterance' if cfg.normalize else 'not normalised'}",
    ]
    if vocab is not None:
        lines.append(f"vocabulary:   {len(vocab)} tokens: {' '.join(sorted(vocab, key=vocab.get))}")
    for key, value in sorted(cfg.extra.items()):
        lines.append(f"{key + ':':<13} {json.dumps(value) if not isinstance(value, str) else value}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> None:
    model, cfg, vocab = load_model_dir(args.model_dir)
    print(describe(model, cfg, vocab))


def embed_file(encoder: torch.nn.Module, cfg, path: str, layer: int | None) -> np.ndarray:
    with torch.inference_mode():
        x = torch.from_numpy(model_input(load_audio(path), cfg, path))[None]
        if layer is None:
            return encoder(x).last_hidden_state[0].numpy()
        out = encoder(x, num_layers=layer, return_hidden=True)
        return out.hidden_states[layer][0].numpy()


def cmd_embed(args: argparse.Namespace) -> None:
    model, cfg, _ = load_model_dir(args.model)
    encoder = encoder_of(model)
    if args.layer is not None and not 0 <= args.layer <= cfg.encoder_layers:
        raise SystemExit(f"--layer must be between 0 (Transformer input) and {cfg.encoder_layers}")
    feats = [embed_file(encoder, cfg, p, args.layer) for p in args.audio]
    out = Path(args.out)
    if out.suffix == ".npz":
        np.savez(out, **{f"{i}:{p}": f for i, (p, f) in enumerate(zip(args.audio, feats))})
    elif len(feats) == 1:
        np.save(out, feats[0])
    else:  # frames of all files concatenated, with an index of where each starts
        np.save(out, np.concatenate(feats))
        index = out.with_suffix(".index.tsv")
        start, rows = 0, ["path\tstart_frame\tnum_frames"]
        for p, f in zip(args.audio, feats):
            rows.append(f"{p}\t{start}\t{len(f)}")
            start += len(f)
        index.write_text("\n".join(rows) + "\n")
    print(f"wrote {out}: {len(feats)} file(s), {sum(len(f) for f in feats)} frames x {feats[0].shape[1]} dims")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import a transformers or fairseq checkpoint into a w2v2 model directory")
    p.add_argument("--from", dest="source", choices=["hf", "fairseq"], required=True)
    p.add_argument("src", help="transformers save_pretrained folder or hub id (e.g. facebook/wav2vec2-base, fetched "
                   "into the Hugging Face cache; HF_HUB_OFFLINE=1 uses the cache only), or fairseq .pt file")
    p.add_argument("out", help="w2v2 model directory to write")
    p.add_argument("--dict", help="fairseq target dictionary (dict.ltr.txt) for fine-tuned checkpoints")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="export a w2v2 model directory")
    p.add_argument("--to", dest="target", choices=["hf", "onnx"], required=True,
                   help="hf: a transformers save_pretrained folder; onnx: one .onnx file of a fine-tuned CTC model "
                        "(padded waveform batch and valid lengths -> logits and frame lengths, dynamic batch and "
                        "length; the config and vocabulary in its metadata), for `transcribe --backend onnx`")
    p.add_argument("model_dir")
    p.add_argument("out", help="hf: folder to write; onnx: file to write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("info", help="architecture, parameter count and origin of a model directory")
    p.add_argument("model_dir")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("embed", help="frame-level representations (50 frames/s) of audio files")
    p.add_argument("--model", required=True)
    p.add_argument("audio", nargs="+")
    p.add_argument("--layer", type=int, help="hidden state N (0 = Transformer input, N = output of block N); "
                   "default: the final encoder output")
    p.add_argument("--out", required=True, help=".npy (one file, or all frames concatenated + .index.tsv) or .npz")
    p.set_defaults(func=cmd_embed)
