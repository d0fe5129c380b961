"""Training precision per device: bf16 autocast only where the hardware multiplies in bf16.

The paper trains in fp16 on V100s (section 4.2). On a CPU, bf16 pays only where the cores compute
it natively (AVX512-BF16 or AMX): there a ``tiny`` pre-training update runs several times faster
than in fp32. Without them oneDNN emulates bf16 and the update is slower instead: on a 2-core AVX2
EPYC, 22 s per ``tiny`` update in bf16 against 4.6 s in fp32 (benchmarks/README.md). ``auto``, the
default, picks bf16 where it is native and fp32 elsewhere.
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager

import torch

from ..config import one_of

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matrix products in hardware."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        probes = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
        return any(probe() for probe in probes if probe is not None)
    return False


def resolve_precision(requested: str, device: torch.device) -> str:
    """``requested`` ("auto", "fp32", "bf16", "fp16") made concrete for ``device``; explicit bf16
    where it is emulated is kept, with a warning."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision {one_of(PRECISIONS)}, got {requested!r}")
    if requested == "fp16" and device.type != "cuda":
        raise ValueError("fp16 training needs CUDA (it uses a loss scaler); use --precision auto or bf16 on CPU")
    if requested == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if requested == "bf16" and not native_bf16(device):
        warnings.warn(f"bf16 on a {device.type} without native bf16 (no AVX512-BF16 or AMX on a CPU): it is "
                      "emulated and several times slower than fp32; --precision auto picks fp32 here", stacklevel=2)
    return requested


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    """The autocast context of a resolved ``precision`` ("fp32", "bf16" or "fp16")."""
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
