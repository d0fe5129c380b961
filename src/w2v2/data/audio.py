"""Reading audio: soundfile for every format it knows, mono downmix, soxr resampling to 16 kHz.

Every failure is an :class:`AudioError` that names the file and the problem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000


class AudioError(ValueError):
    """A file that cannot be used as speech input; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


def audio_info(path: str | Path) -> sf._SoundFileInfo:
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(path, f"not readable as audio ({e})") from e


def resample(wav: np.ndarray, orig_sr: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    if orig_sr == sr:
        return wav
    import soxr

    return soxr.resample(wav, orig_sr, sr, quality="HQ").astype(np.float32, copy=False)


def load_audio(path: str | Path, sr: int = SAMPLE_RATE, start: int = 0, frames: int = -1) -> np.ndarray:
    """Mono float32 waveform at ``sr`` Hz. ``start``/``frames`` select a region in source samples.

    Integer formats are scaled to [-1, 1); multi-channel audio is averaged; NaN or infinite
    samples and files shorter than one sample are refused.
    """
    path = Path(path)
    info = audio_info(path)
    if info.frames == 0:
        raise AudioError(path, "contains no audio samples")
    try:
        wav, file_sr = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(path, f"corrupt or truncated audio ({e})") from e
    if wav.shape[0] == 0:
        raise AudioError(path, "no samples could be decoded (truncated file?)")
    wav = wav.mean(axis=1) if wav.shape[1] > 1 else wav[:, 0]
    if not np.isfinite(wav).all():
        raise AudioError(path, f"{int((~np.isfinite(wav)).sum())} NaN or infinite samples")
    return np.ascontiguousarray(resample(wav, file_sr, sr), dtype=np.float32)


def normalize(wav: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per utterance (LV60 / XLS-R models; fairseq's layer_norm on the wave)."""
    return ((wav - wav.mean()) / np.sqrt(wav.var() + 1e-5)).astype(np.float32)
