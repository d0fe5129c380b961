"""Waveform augmentation for training on little audio (WavAugment, Kharitonov et al. 2021;
Wav2Vec-Aug, Sriram et al. 2022): speed perturbation, additive coloured noise, synthetic
reverberation. Not part of wav2vec 2.0 itself (the paper pre-trains on 960 h to 60k h without
augmentation); an option for many passes over a few hours.

Every draw comes from the generator passed in, so a batch's augmentation is a function of the
data loader's (seed, epoch, batch) like its crops, and a resumed run sees the same audio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .audio import SAMPLE_RATE, resample

NOISE_SNR_DB = (5.0, 30.0)  # additive noise: signal-to-noise ratio, uniform in dB
NOISE_SLOPE = (0.0, 2.0)  # power spectrum ~ 1/f^slope: white (0), pink (1), brown (2)
RT60_SECONDS = (0.1, 0.6)  # reverberation: time for the impulse response to decay by 60 dB


@dataclass(frozen=True)
class Augmentation:
    speed: float = 0.0  # speed factor uniform in [1 - speed, 1 + speed] (tempo and pitch, as `sox speed`)
    speed_steps: int = 0  # n >= 2: one of n evenly spaced factors over that range (3: Ko et al.'s 0.9 / 1.0 / 1.1)
    noise: float = 0.0  # probability of additive coloured noise
    reverb: float = 0.0  # probability of a synthetic room impulse response

    def __post_init__(self) -> None:
        if not 0.0 <= self.speed < 0.5:
            raise ValueError(f"augment_speed {self.speed}: expected a relative change in [0, 0.5)")
        for name in ("noise", "reverb"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augment_{name} {getattr(self, name)}: expected a probability in [0, 1]")
        if self.speed_steps == 1 or self.speed_steps < 0:
            raise ValueError(f"augment_speed_steps {self.speed_steps}: expected 0 (any factor) or at least 2")

    @property
    def active(self) -> bool:
        return self.speed > 0 or self.noise > 0 or self.reverb > 0

    @property
    def finite(self) -> bool:
        """Whether a clip has finitely many versions (discrete speed factors at most), each the same
        every time it is drawn: what a cache of their features needs."""
        return self.noise == 0 and self.reverb == 0 and (self.speed == 0 or self.speed_steps >= 2)

    def longest(self, samples: int) -> int:
        """The most samples a clip of ``samples`` can have after augmentation (slowed to 1 - speed,
        with a sample of resampling round-off)."""
        return samples if self.speed == 0 else math.ceil(samples / (1 - self.speed)) + 1

    def version(self, wav: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """One augmented copy of a mono 16 kHz float32 clip (its length changes with the speed) and a
        name for it: the same name for the same audio when ``finite`` (``""`` for the clip itself,
        ``"@speed=0.9"``)."""
        name = ""
        if self.speed > 0:
            if self.speed_steps:
                factors = np.linspace(1 - self.speed, 1 + self.speed, self.speed_steps)
                factor = float(factors[rng.integers(self.speed_steps)])
            else:
                factor = float(rng.uniform(1 - self.speed, 1 + self.speed))
            if factor != 1.0:
                wav, name = change_speed(wav, factor), f"@speed={factor:.6g}"
        if self.reverb > 0 and rng.random() < self.reverb:
            wav = reverberate(wav, float(rng.uniform(*RT60_SECONDS)), rng)
        if self.noise > 0 and rng.random() < self.noise:
            wav = add_noise(wav, float(rng.uniform(*NOISE_SNR_DB)), float(rng.uniform(*NOISE_SLOPE)), rng)
        return wav, name


def change_speed(wav: np.ndarray, factor: float) -> np.ndarray:
    """Play ``wav`` ``factor`` times faster: resampled as if recorded at ``factor`` x 16 kHz, so
    duration divides and every frequency multiplies by ``factor``."""
    if factor == 1.0 or len(wav) == 0:
        return wav
    return resample(wav, round(SAMPLE_RATE * factor), SAMPLE_RATE)


def coloured_noise(n: int, slope: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-power Gaussian noise whose power spectrum falls as 1/f^slope."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    noise = np.fft.irfft(spectrum * f ** (-slope / 2), n)
    return noise / max(float(np.sqrt(np.mean(noise ** 2))), 1e-12)


def add_noise(wav: np.ndarray, snr_db: float, slope: float, rng: np.random.Generator) -> np.ndarray:
    """``wav`` plus coloured noise at ``snr_db`` relative to the clip's mean power."""
    power = float(np.mean(wav.astype(np.float64) ** 2))
    if power == 0.0:
        return wav
    noise = coloured_noise(len(wav), slope, rng) * np.sqrt(power / 10 ** (snr_db / 10))
    return (wav + noise).astype(np.float32)


def reverberate(wav: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """``wav`` convolved with an exponentially decaying noise tail (decay of 60 dB in ``rt60``
    seconds) behind a unit direct path, rescaled to the clip's RMS; same length as ``wav``."""
    n = max(int(rt60 * SAMPLE_RATE), 2)
    t = np.arange(n) / SAMPLE_RATE
    rir = rng.standard_normal(n) * 10 ** (-3 * t / rt60)  # amplitude -60 dB at t = rt60
    rir[0] = 1.0
    size = 1 << (len(wav) + n - 2).bit_length()  # a power of two >= the full convolution: a fast FFT
    out = np.fft.irfft(np.fft.rfft(wav, size) * np.fft.rfft(rir, size), size)[:len(wav)]
    rms_in, rms_out = np.sqrt(np.mean(wav.astype(np.float64) ** 2)), np.sqrt(np.mean(out ** 2))
    return (out * (rms_in / rms_out if rms_out > 0 else 1.0)).astype(np.float32)
