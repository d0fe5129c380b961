"""``w2v2 serve MODEL_DIR``: the HTTP transcription service and its web page (uvicorn)."""

from __future__ import annotations

import argparse

from .decoding import SERVED_DECODERS
from .limits import MB, Limits


def limits_of(args: argparse.Namespace) -> Limits:
    return Limits(max_bytes=int(args.max_mb * MB), max_seconds=args.max_seconds, max_pending=args.max_pending,
                  max_batch=args.max_batch, max_beam_size=args.max_beam_size, decoder_cache=args.decoder_cache)


def cmd_serve(args: argparse.Namespace) -> None:
    try:
        import uvicorn

        from .app import create_app
        from .service import Service
    except ImportError as e:
        raise ValueError(f"w2v2 serve needs the 'serve' extra ({e.name} is missing): pip install 'w2v2[serve]'") from e
    service = Service(args.model_dir, limits_of(args), args.decoder)  # inference: transcribe's defaults
    print(f"w2v2 serve: {args.model_dir} (decoder {service.decoders.default}) on http://{args.host}:{args.port}/",
          flush=True)
    uvicorn.run(create_app(service), host=args.host, port=args.port, log_level=args.log_level)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="HTTP transcription service and web page for a fine-tuned CTC model")
    p.add_argument("model_dir")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--decoder", choices=("auto",) + SERVED_DECODERS, default="auto",
                   help="default decoder; auto: MODEL_DIR/decoder.json's tuned n-gram search if any, else greedy")
    d = Limits()
    g = p.add_argument_group("limits")
    g.add_argument("--max-mb", type=float, default=d.max_bytes / MB, help="largest request body (MB; larger: 413)")
    g.add_argument("--max-seconds", type=float, default=d.max_seconds, help="longest audio (s; longer: 413)")
    g.add_argument("--max-pending", type=int, default=d.max_pending,
                   help="requests admitted at once, uploading, queued or running (more: 503 with Retry-After)")
    g.add_argument("--max-batch", type=int, default=d.max_batch, help="queued requests run through the model together")
    g.add_argument("--max-beam-size", type=int, default=d.max_beam_size, help="largest beam_size a request may ask for")
    g.add_argument("--decoder-cache", type=int, default=d.decoder_cache, help="built decoders kept in memory")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.set_defaults(func=cmd_serve)
