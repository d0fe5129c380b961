"""The bounds of the service, and the errors a request gets when it breaks one."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one ``w2v2 serve`` process accepts (the ``--max-*`` options)."""

    max_bytes: int = 32 * MB  # request body (the multipart upload); larger: 413
    max_seconds: float = 600.0  # audio duration; longer: 413 (long files are chunked for the model)
    max_pending: int = 16  # requests admitted at once (uploading, decoding, queued or running); more: 503
    max_batch: int = 8  # queued requests run through the model together
    max_beam_size: int = 500  # per-request beam_size override; the paper's beam
    decoder_cache: int = 4  # built decoders kept (an n-gram decoder holds its LM in memory)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if not getattr(self, field.name) > 0:
                raise ValueError(f"serve limit {field.name} must be positive, got {getattr(self, field.name)}")

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "max_mb": self.max_bytes / MB}


class RequestError(Exception):
    """A request the service refuses: the HTTP status and a message that names the problem."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def json_safe(value):
    """``value`` with non-finite floats written as strings ("-inf"): JSON has no infinity
    (the beam search's default ``unk_score`` is -inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
