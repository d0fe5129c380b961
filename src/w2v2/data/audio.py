"""Reading audio: soundfile for every format it knows, mono downmix, soxr resampling to 16 kHz.

The model (paper section 2) takes raw 16 kHz mono float waveforms. Every failure is an
:class:`AudioError` that names the file and the problem:

* missing, empty, directory, unreadable (permissions), not audio or a format libsndfile cannot
  decode (AAC/M4A, ...): refused when opening;
* truncated or corrupt data: refused when decoding fails, or when fewer samples decode than the
  header announces (a truncated FLAC). A truncated WAV has no such check: libsndfile sizes it from
  the file length, so the samples that are present are returned;
* NaN or infinite samples (float formats): refused, with the count and the time of the first one;
* implausible sample rates (below :data:`MIN_SAMPLE_RATE`): refused;
* 8/16/24/32-bit integer audio is scaled to [-1, 1), float audio is passed through, every channel
  count is averaged to mono, other rates are resampled with soxr (HQ).

Files are decoded in bounded blocks, so memory follows the decoded audio rather than what a
(possibly corrupt) header claims, and a region (``start``/``frames``) seeks instead of loading the
whole file. :func:`iter_audio_blocks` streams a long file (hours) as fixed-size 16 kHz blocks,
resampled with soxr's streaming resampler: the concatenated blocks equal :func:`load_audio`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000
MIN_SAMPLE_RATE = 4000  # below this no speech band is left; also bounds the upsampling factor
_BLOCK_VALUES = 1 << 18  # samples (all channels) decoded per read: 1 MB of float32
_SOXR_QUALITY = "HQ"


class AudioError(ValueError):
    """A file that cannot be used as speech input; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


def _open_problem(e: Exception) -> str:
    msg = str(e)
    if "Format not recognised" in msg or "format not recognised" in msg:
        return ("not an audio file soundfile can read (format not recognised; libsndfile reads WAV, FLAC, "
                "OGG/Vorbis/Opus, MP3, AIFF and more, not AAC/M4A: convert it first)")
    return f"not readable as audio ({msg})"


def _open(path: Path) -> sf.SoundFile:
    """Open for reading, with every libsndfile / OS failure turned into an AudioError."""
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        f = sf.SoundFile(str(path))
    except OSError as e:  # permissions, I/O errors
        raise AudioError(path, f"cannot open ({e.strerror or e})") from e
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioError(path, _open_problem(e)) from e
    if f.samplerate < MIN_SAMPLE_RATE or f.channels < 1:
        f.close()
        raise AudioError(path, f"implausible format: {f.samplerate} Hz, {f.channels} channels "
                               f"(need at least {MIN_SAMPLE_RATE} Hz and one channel)")
    return f


def audio_info(path: str | Path) -> sf._SoundFileInfo:
    """soundfile's header information (frames, samplerate, channels, format, subtype)."""
    path = Path(path)
    _open(path).close()
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioError(path, _open_problem(e)) from e


def resample(wav: np.ndarray, orig_sr: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling of a mono float32 signal (soxr HQ); identity when the rates match."""
    if orig_sr <= 0 or sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {sr}")
    if orig_sr == sr:
        return wav
    return soxr.resample(wav, orig_sr, sr, quality=_SOXR_QUALITY).astype(np.float32, copy=False)


def _read_mono(f: sf.SoundFile, path: Path, start: int, frames: int) -> Iterator[np.ndarray]:
    """Decode ``frames`` source frames from ``start`` (-1: to the end) in bounded blocks, averaged
    to mono; refuses non-finite samples and data that ends before the header says it should."""
    total = f.frames
    if start < 0 or (start >= total and total > 0):
        raise AudioError(path, f"region start {start} outside the file ({total} samples)")
    want = total - start if frames < 0 else min(frames, total - start)
    try:
        if start:
            f.seek(start)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(path, f"corrupt or truncated audio: cannot seek to sample {start} ({e})") from e
    step = max(1, _BLOCK_VALUES // f.channels)
    done = 0
    while done < want:
        try:
            block = f.read(min(step, want - done), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            at = (start + done) / f.samplerate
            raise AudioError(path, f"corrupt or truncated audio in the block from {at:.2f} s ({e})") from e
        if len(block) == 0:
            break
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        bad = ~np.isfinite(mono)
        if bad.any():
            first = start + done + int(np.argmax(bad))
            raise AudioError(path, f"NaN or infinite samples (the first at {first / f.samplerate:.3f} s)")
        done += len(mono)
        yield mono
    if done < want:
        raise AudioError(path, f"truncated: the header announces {want} samples from {start}, only {done} "
                               "could be decoded")


def load_audio(path: str | Path, sr: int = SAMPLE_RATE, start: int = 0, frames: int = -1,
               min_samples: int = 1) -> np.ndarray:
    """Mono float32 waveform at ``sr`` Hz. ``start``/``frames`` select a region in source samples
    (``frames=-1``: to the end); only that region is decoded.

    Integer formats are scaled to [-1, 1); multi-channel audio is averaged; NaN or infinite
    samples, and results shorter than ``min_samples`` (at ``sr``), are refused. Pass the receptive
    field (400 samples for the paper's feature encoder) to refuse clips that give no frame.
    """
    path = Path(path)
    with _open(path) as f:
        blocks = list(_read_mono(f, path, start, frames))
        file_sr = f.samplerate
    if not blocks:
        raise AudioError(path, "contains no audio samples")
    wav = np.ascontiguousarray(resample(np.concatenate(blocks), file_sr, sr), dtype=np.float32)
    if len(wav) < max(min_samples, 1):
        raise AudioError(path, f"only {len(wav)} samples at {sr} Hz (need at least {max(min_samples, 1)})")
    return wav


def _fixed_blocks(chunks: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Re-cut a stream of arrays into consecutive blocks of ``size`` (the last one shorter)."""
    rest = np.zeros(0, dtype=np.float32)
    for chunk in chunks:
        buf = np.concatenate([rest, chunk]) if len(rest) else chunk
        full = len(buf) // size * size
        for i in range(0, full, size):
            yield buf[i:i + size].copy()
        rest = buf[full:].copy()
    if len(rest):
        yield rest


def iter_audio_blocks(path: str | Path, block_seconds: float, sr: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
    """Stream a file of any length as consecutive mono float32 blocks of ``block_seconds`` at
    ``sr`` Hz (the last one shorter), for long-file inference. Memory is bounded by the block size;
    soxr's streaming resampler keeps its state across blocks, so the concatenation equals
    :func:`load_audio` of the whole file."""
    size = int(round(block_seconds * sr))
    if size < 1:
        raise ValueError(f"block_seconds must give at least one sample at {sr} Hz, got {block_seconds}")
    path = Path(path)
    with _open(path) as f:
        chunks = _read_mono(f, path, 0, -1)
        if f.samplerate != sr:
            chunks = _resampled(chunks, soxr.ResampleStream(f.samplerate, sr, 1, dtype="float32",
                                                            quality=_SOXR_QUALITY))
        empty = True
        for block in _fixed_blocks(chunks, size):
            empty = False
            yield block
    if empty:
        raise AudioError(path, "contains no audio samples")


def _resampled(chunks: Iterator[np.ndarray], stream: soxr.ResampleStream) -> Iterator[np.ndarray]:
    for chunk in chunks:
        yield stream.resample_chunk(chunk)
    yield stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


def normalize(wav: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per utterance (LV60 / XLS-R models; fairseq's layer_norm on the wave)."""
    return ((wav - wav.mean()) / np.sqrt(wav.var() + 1e-5)).astype(np.float32)
