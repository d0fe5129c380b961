"""The first conv block's GroupNorm over a padded batch: ``masked_group_norm`` against torch's GroupNorm.

    .venv/bin/python benchmarks/group_norm.py [--channels 512] [--seconds 8 6 5 3] [--threads 2] [--reps 5]

A padded batch of 16 kHz utterances after the first conv (kernel 10, stride 5: 3,200 frames per
second) with BASE's one group per channel. Times, with and without autograd (the best of
``--reps``, interleaved):

* ``masked``: :func:`w2v2.model.feature_encoder.masked_group_norm`, each utterance's statistics over
  its valid frames (what the encoder runs when valid lengths are given: torch's fused kernel on each
  utterance's valid frames);
* ``masked, export form``: the same function as an exported graph runs it (masked sums over the
  padded batch, no data-dependent shapes; until 2026-12-07 the eager form too);
* ``per utterance``: ``nn.GroupNorm`` on each utterance's valid frames, one call each (the same result);
* ``padded``: ``nn.GroupNorm`` on the whole padded batch (wrong statistics: the lower bound).

Prints a table; the results go in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import time

import torch

from w2v2.model.feature_encoder import masked_group_norm


def time_ms(fn, grad: bool, x: torch.Tensor) -> float:
    xx = x.detach().requires_grad_(grad)
    start = time.perf_counter()
    with torch.set_grad_enabled(grad):
        y = fn(xx)
        if grad:
            y.sum().backward()
    return 1000 * (time.perf_counter() - start)


def exporting(fn):
    """``fn()`` as inside ``torch.export`` (``torch.compiler.is_exporting()`` true)."""
    real = torch.compiler.is_exporting
    torch.compiler.is_exporting = lambda: True
    try:
        return fn()
    finally:
        torch.compiler.is_exporting = real


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--channels", type=int, default=512)
    p.add_argument("--seconds", type=float, nargs="+", default=[8.0, 6.0, 5.0, 3.0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lengths = torch.tensor([int(3200 * s) for s in args.seconds])
    x = torch.randn(len(lengths), args.channels, int(lengths.max()))
    norm = torch.nn.GroupNorm(args.channels, args.channels)
    variants = {
        "masked": lambda v: masked_group_norm(v, lengths, norm),
        "masked, export form": lambda v: exporting(lambda: masked_group_norm(v, lengths, norm)),
        "per utterance": lambda v: torch.stack([norm(v[i:i + 1, :, :n]).sum() for i, n in enumerate(lengths)]),
        "padded": norm,
    }
    best = {(name, grad): float("inf") for name in variants for grad in (False, True)}
    for _ in range(args.reps):  # interleaved: the machine's speed drifts
        for (name, grad) in best:
            best[name, grad] = min(best[name, grad], time_ms(variants[name], grad, x))
    print(f"batch {tuple(x.shape)}, {args.threads} threads, best of {args.reps} (ms)")
    print("| variant | no autograd | forward + backward |\n|---|---:|---:|")
    for name in variants:
        print(f"| {name} | {best[name, False]:.1f} | {best[name, True]:.1f} |")


if __name__ == "__main__":
    main()
