"""Reading an upload within the limits: the request body is counted as it arrives, the file is
written to a temporary folder (removed at once) and decoded by :func:`load_audio`."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
from starlette.types import Message, Receive

from ..data.audio import SAMPLE_RATE, AudioError, audio_info, load_audio
from .limits import MB, Limits, RequestError

FILE_FIELD = "file"
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")  # kept on the temporary file (a hint for libsndfile)


def body_too_large(limits: Limits, size: int | None = None) -> RequestError:
    """413 for a body of ``size`` bytes (declared), or one found too large while reading (``None``)."""
    said = f"is {size / MB:.1f} MB" if size is not None else f"is larger than {limits.max_bytes / MB:g} MB"
    return RequestError(413, f"the upload {said}; this service accepts at most {limits.max_bytes / MB:g} MB (--max-mb)")


def check_declared_length(content_length: str | None, limits: Limits) -> None:
    """413 before reading a body whose Content-Length is over the limit."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limits.max_bytes:
        raise body_too_large(limits, int(content_length))


def limited_receive(receive: Receive, limits: Limits) -> Receive:
    """``receive`` that raises 413 as soon as the body read so far is over ``max_bytes``
    (bodies without Content-Length, or longer than it)."""
    size = 0

    async def wrapped() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limits.max_bytes:
                raise body_too_large(limits)
        return message

    return wrapped


def decode_upload(file: BinaryIO, filename: str, limits: Limits, min_samples: int) -> np.ndarray:
    """The uploaded audio as a 16 kHz mono waveform: copied into a temporary folder that is
    removed before returning, checked against the duration limit from its header, then decoded."""
    name = filename or "upload"
    suffix = Path(name).suffix if _SUFFIX.fullmatch(Path(name).suffix) else ""
    with tempfile.TemporaryDirectory(prefix="w2v2-serve-") as folder:
        path = Path(folder) / f"upload{suffix}"
        with path.open("wb") as out:
            shutil.copyfileobj(file, out)
        if path.stat().st_size == 0:
            raise RequestError(400, f"{name}: empty upload (0 bytes)")
        try:
            info = audio_info(path)
            check_duration(name, info.frames / info.samplerate, limits)
            wave = load_audio(path, min_samples=min_samples)
        except AudioError as e:
            raise RequestError(422, f"{name}: {e.problem}") from None
    check_duration(name, len(wave) / SAMPLE_RATE, limits)  # the header may under-state it
    return wave


def check_duration(name: str, seconds: float, limits: Limits) -> None:
    if seconds > limits.max_seconds:
        raise RequestError(413, f"{name}: the audio is {seconds:.1f} s long; this service accepts at most "
                                f"{limits.max_seconds:g} s (--max-seconds)")
