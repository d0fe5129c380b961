"""Peak resident-memory increase of one call, read from the kernel (Linux).

torch's CPU tensors come from malloc/mmap, which tracemalloc does not see; the kernel's high-water
mark (VmHWM) does. Before the call, freed heap memory is returned to the system (malloc_trim) and the
high-water mark is reset to the current resident size (``echo 5 > /proc/self/clear_refs``); the
increase is then VmHWM after the call minus VmRSS before it.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{STATUS}: no {field} line (peak-memory probing needs Linux)")


def peak_increase_bytes(fn: Callable[[], object]) -> int:
    """Peak RSS during ``fn()`` above the RSS just before it, in bytes."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    before = _status_kib("VmRSS")
    try:
        CLEAR_REFS.write_text("5")
    except OSError as err:
        raise RuntimeError(f"{CLEAR_REFS}: cannot reset the peak-RSS mark ({err})") from err
    fn()
    return (_status_kib("VmHWM") - before) * 1024
