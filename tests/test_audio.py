"""load_audio / iter_audio_blocks on every kind of input a user may hand over: each is either read
correctly (checked against the signal that was written, or an analytic sine) or refused with an
AudioError that names the file and the problem."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from w2v2.data.audio import AudioError, audio_info, iter_audio_blocks, load_audio, resample

SR = 16000


def noise(n: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, (n, channels)).astype(np.float32)
    return x[:, 0] if channels == 1 else x


def sine(n: int, sr: int, hz: float = 440.0, start: int = 0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * hz * (start + np.arange(n)) / sr)).astype(np.float32)


def refused(path: Path, *words: str, **kwargs) -> str:
    with pytest.raises(AudioError) as e:
        load_audio(path, **kwargs)
    msg = str(e.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, msg
    return msg


@pytest.mark.parametrize("fmt,subtype,step", [
    ("WAV", "PCM_U8", 2 / 2**8), ("FLAC", "PCM_S8", 2 / 2**8), ("WAV", "PCM_16", 2 / 2**16),
    ("FLAC", "PCM_16", 2 / 2**16), ("WAV", "PCM_24", 2 / 2**24), ("FLAC", "PCM_24", 2 / 2**24),
    ("WAV", "PCM_32", 2 / 2**31), ("WAV", "FLOAT", 0), ("WAV", "DOUBLE", 0), ("AIFF", "PCM_16", 2 / 2**16),
    ("OGG", "VORBIS", None),
])
def test_sample_formats_scale_to_unit_range(tmp_path, fmt, subtype, step):
    x = noise(4000) if step is not None else sine(4000, SR)
    path = tmp_path / f"x_{subtype}.{fmt.lower()}"
    sf.write(path, x, SR, format=fmt, subtype=subtype)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1 and len(y) == len(x)
    if step is None:  # lossy: same signal, not the same samples
        assert np.corrcoef(x[400:-400], y[400:-400])[0, 1] > 0.99
    else:  # integer formats: one quantisation step at most
        assert np.abs(y - x).max() <= step + 1e-7


@pytest.mark.parametrize("channels", [2, 3, 6])
def test_multichannel_is_averaged(tmp_path, channels):
    x = noise(3000, channels)
    sf.write(tmp_path / "m.wav", x, SR, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "m.wav"), x.mean(axis=1), atol=1e-7)


@pytest.mark.parametrize("sr", [8000, 11025, 22050, 44100, 48000])
def test_other_rates_resample_to_16k(tmp_path, sr):
    n = sr  # one second
    sf.write(tmp_path / "s.flac", sine(n, sr), sr, subtype="PCM_24")
    y = load_audio(tmp_path / "s.flac")
    assert len(y) == round(n * SR / sr)
    # the same 440 Hz sine sampled at 16 kHz, away from the filter's edge effects
    np.testing.assert_allclose(y[200:-200], sine(len(y), SR)[200:-200], atol=2e-3)
    assert audio_info(tmp_path / "s.flac").samplerate == sr


def test_resample_identity_and_bad_rates():
    x = noise(100)
    assert resample(x, SR) is x
    with pytest.raises(ValueError, match="positive"):
        resample(x, 0)


def test_missing_empty_and_directory(tmp_path):
    refused(tmp_path / "nope.wav", "not found")
    (tmp_path / "empty.wav").write_bytes(b"")
    refused(tmp_path / "empty.wav", "empty file")
    (tmp_path / "d.wav").mkdir()
    refused(tmp_path / "d.wav", "directory")
    sf.write(tmp_path / "header_only.wav", np.zeros(0, np.float32), SR)
    refused(tmp_path / "header_only.wav", "no audio samples")


def test_not_audio_and_unsupported_formats(tmp_path):
    (tmp_path / "noise.wav").write_bytes(np.random.default_rng(0).bytes(5000))
    refused(tmp_path / "noise.wav", "format not recognised")
    (tmp_path / "notes.flac").write_text("these are not samples\n" * 50)
    refused(tmp_path / "notes.flac", "format not recognised")
    m4a = b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isommp42" + bytes(2000)  # an MPEG-4 audio header
    (tmp_path / "speech.m4a").write_bytes(m4a)
    refused(tmp_path / "speech.m4a", "AAC/M4A")


def test_truncated_and_corrupt_flac_are_refused(tmp_path):
    sf.write(tmp_path / "ok.flac", noise(32000), SR, subtype="PCM_16")
    data = (tmp_path / "ok.flac").read_bytes()
    (tmp_path / "half.flac").write_bytes(data[: len(data) // 2])
    refused(tmp_path / "half.flac", "truncated")
    (tmp_path / "header.flac").write_bytes(data[:100])  # STREAMINFO but no frames
    refused(tmp_path / "header.flac")
    damaged = bytearray(data)
    damaged[len(data) // 2:len(data) // 2 + 64] = bytes(64)  # zeroed frames in the middle
    (tmp_path / "damaged.flac").write_bytes(bytes(damaged))
    refused(tmp_path / "damaged.flac", "corrupt")


def test_truncated_wav_returns_the_samples_present(tmp_path):
    x = noise(8000)
    sf.write(tmp_path / "ok.wav", x, SR, subtype="PCM_16")
    data = (tmp_path / "ok.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: 44 + 2 * 3000 + 1])  # 44-byte header, odd cut mid-sample
    y = load_audio(tmp_path / "cut.wav")
    assert len(y) == 3000
    np.testing.assert_allclose(y, x[:3000], atol=2 / 2**16)
    (tmp_path / "nodata.wav").write_bytes(data[:30])
    refused(tmp_path / "nodata.wav", "not readable")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_refused(tmp_path, bad):
    x = noise(SR * 2)
    x[SR + 8000] = bad
    sf.write(tmp_path / "f.wav", x, SR, subtype="FLOAT")
    refused(tmp_path / "f.wav", "NaN or infinite", "1.500 s")
    with pytest.raises(AudioError, match="NaN or infinite"):
        list(iter_audio_blocks(tmp_path / "f.wav", 0.5))
    assert len(load_audio(tmp_path / "f.wav", frames=SR)) == SR  # the region before it is fine


def test_short_clips_and_min_samples(tmp_path):
    sf.write(tmp_path / "short.wav", noise(100), SR)
    assert len(load_audio(tmp_path / "short.wav")) == 100
    refused(tmp_path / "short.wav", "100 samples", "at least 400", min_samples=400)
    sf.write(tmp_path / "one.wav", noise(1), 48000)  # one sample at 48 kHz rounds to none at 16 kHz
    refused(tmp_path / "one.wav", "0 samples")


def test_implausible_sample_rate(tmp_path):
    sf.write(tmp_path / "slow.wav", noise(1000), 1000)
    refused(tmp_path / "slow.wav", "1000 Hz")


def test_region_reads_the_same_samples(tmp_path):
    x = noise(50000, 2)
    sf.write(tmp_path / "r.flac", x, SR, subtype="PCM_24")
    full = load_audio(tmp_path / "r.flac")
    np.testing.assert_array_equal(load_audio(tmp_path / "r.flac", start=12345, frames=777), full[12345:13122])
    np.testing.assert_array_equal(load_audio(tmp_path / "r.flac", start=49000), full[49000:])
    refused(tmp_path / "r.flac", "outside the file", start=50000)


@pytest.mark.parametrize("sr,channels,block", [(16000, 1, 0.25), (48000, 2, 0.1), (8000, 1, 1.0), (22050, 3, 0.37)])
def test_blocks_concatenate_to_load_audio(tmp_path, sr, channels, block):
    x = noise(int(2.3 * sr), channels)
    sf.write(tmp_path / "b.flac", x, sr, subtype="PCM_24")
    whole = load_audio(tmp_path / "b.flac")
    blocks = list(iter_audio_blocks(tmp_path / "b.flac", block))
    size = round(block * SR)
    assert all(len(b) == size and b.dtype == np.float32 for b in blocks[:-1]) and 0 < len(blocks[-1]) <= size
    np.testing.assert_array_equal(np.concatenate(blocks), whole)


def write_sine(path: Path, seconds: int, sr: int) -> None:
    with sf.SoundFile(path, "w", sr, 1, subtype="PCM_16") as f:
        for s in range(0, seconds * sr, 60 * sr):
            f.write(sine(60 * sr, sr, start=s))


def test_region_of_a_long_file_does_not_load_it(tmp_path):
    write_sine(tmp_path / "long.wav", 600, SR)  # 10 minutes, 38 MB as float32
    tracemalloc.start()
    y = load_audio(tmp_path / "long.wav", start=300 * SR, frames=SR)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_allclose(y, sine(SR, SR, start=300 * SR), atol=1e-4)
    assert peak < 2_000_000  # a few copies of the 64 kB region, never the 38 MB of the file


@pytest.mark.slow
def test_one_hour_file_streams_in_bounded_memory(tmp_path):
    sr = 8000
    write_sine(tmp_path / "hour.wav", 3600, sr)
    tracemalloc.start()
    total, middle = 0, None
    for block in iter_audio_blocks(tmp_path / "hour.wav", 30.0):
        if total == 1800 * SR:
            middle = block
        total += len(block)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total == 3600 * SR
    assert peak < 20_000_000  # a few 30-s blocks (1.9 MB each) and decode buffers, not the 230 MB hour
    np.testing.assert_allclose(middle, sine(30 * SR, SR, start=1800 * SR), atol=2e-3)
