"""Waveform augmentation (data/augment.py) against hand computations, and its place in the loader."""

import numpy as np
import pytest
import soundfile as sf

from w2v2.data.augment import Augmentation, add_noise, change_speed, coloured_noise, reverberate
from w2v2.data.dataset import AudioDataset
from w2v2.data.manifest import Entry

SR = 16000


def tone(freq: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_scales_duration_and_frequency(factor):
    out = change_speed(tone(440.0), factor)
    assert abs(len(out) - SR / factor) <= 1
    peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * SR / len(out)
    assert abs(peak_hz - 440.0 * factor) < 2.0


def test_noise_has_the_requested_snr():
    wav = tone(300.0)
    for snr in (5.0, 20.0):
        noisy = add_noise(wav, snr, 1.0, np.random.default_rng(0))
        measured = 10 * np.log10(np.mean(wav.astype(np.float64) ** 2) / np.mean((noisy - wav).astype(np.float64) ** 2))
        assert measured == pytest.approx(snr, abs=0.01)
    silent = np.zeros(100, np.float32)
    assert np.array_equal(add_noise(silent, 10.0, 0.0, np.random.default_rng(0)), silent)


@pytest.mark.parametrize("slope", [0.0, 1.0, 2.0])
def test_noise_spectrum_falls_as_one_over_f_to_the_slope(slope):
    n = 1 << 16
    power = np.abs(np.fft.rfft(coloured_noise(n, slope, np.random.default_rng(1)))) ** 2
    f = np.fft.rfftfreq(n)
    band = (f > 0.001) & (f < 0.4)
    fitted = np.polyfit(np.log(f[band]), np.log(power[band]), 1)[0]
    assert fitted == pytest.approx(-slope, abs=0.05)


def test_reverberation_is_the_convolution_with_a_decaying_response():
    wav = np.random.default_rng(2).standard_normal(3000).astype(np.float32) * 0.1
    rt60 = 0.05
    out = reverberate(wav, rt60, np.random.default_rng(5))
    # the same impulse response, drawn from the same generator, convolved directly
    n = int(rt60 * SR)
    t = np.arange(n) / SR
    rir = np.random.default_rng(5).standard_normal(n) * 10 ** (-3 * t / rt60)
    rir[0] = 1.0
    ref = np.convolve(wav.astype(np.float64), rir)[:len(wav)]
    ref *= np.sqrt(np.mean(wav.astype(np.float64) ** 2) / np.mean(ref ** 2))
    assert len(out) == len(wav)
    np.testing.assert_allclose(out, ref, atol=1e-6)
    assert 20 * np.log10(np.abs(rir[-1]) / 1.0) < -40  # the tail has decayed by ~60 dB at rt60


def test_augmentation_is_a_function_of_the_generator():
    aug = Augmentation(speed=0.1, noise=1.0, reverb=1.0)
    wav = tone(200.0, 0.5)
    a, b = aug.version(wav, np.random.default_rng(7))[0], aug.version(wav, np.random.default_rng(7))[0]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, aug.version(wav, np.random.default_rng(8))[0])
    assert not Augmentation().active and aug.active


def test_discrete_speed_factors_give_a_few_named_versions_of_a_clip():
    aug = Augmentation(speed=0.1, speed_steps=3)  # Ko et al. 2015: 0.9, 1.0, 1.1
    wav = tone(200.0, 0.5)
    seen: dict[str, np.ndarray] = {}
    for seed in range(40):
        out, name = aug.version(wav, np.random.default_rng(seed))
        if name in seen:
            assert np.array_equal(seen[name], out)  # a name always means the same audio
        seen[name] = out
    assert sorted(seen) == ["", "@speed=0.9", "@speed=1.1"]
    assert np.array_equal(seen[""], wav)
    for factor in (0.9, 1.1):  # played factor x faster: the duration divides by it
        assert abs(len(seen[f"@speed={factor}"]) - len(wav) / factor) <= 2
    assert len(seen["@speed=0.9"]) <= aug.longest(len(wav)) and Augmentation().longest(len(wav)) == len(wav)
    assert aug.finite and not Augmentation(speed=0.1).finite and not Augmentation(speed=0.1, speed_steps=3, noise=0.5).finite
    _, name = Augmentation(speed=0.1).version(wav, np.random.default_rng(0))
    assert name.startswith("@speed=") and name not in seen  # continuous factors: a new version each draw


@pytest.mark.parametrize("kwargs", [{"speed": 0.5}, {"speed": -0.1}, {"noise": 1.5}, {"reverb": -0.2},
                                    {"speed_steps": 1}])
def test_bad_settings_are_refused_with_their_name(kwargs):
    with pytest.raises(ValueError, match="augment_" + next(iter(kwargs))):
        Augmentation(**kwargs)


def test_loader_augments_reproducibly_and_only_when_asked(tmp_path):
    entries = []
    for i, seconds in enumerate((1.0, 1.2)):
        path = tmp_path / f"c{i}.flac"
        sf.write(path, tone(150.0 + 100 * i, seconds), SR)
        entries.append(Entry(path=path, samples=int(SR * seconds)))

    def batch(augment):
        return AudioDataset(entries, [[0, 1]], 64000, 3, 0, False, True, augment=augment)[0].waveform

    plain = batch(None)
    assert np.array_equal(plain.numpy(), batch(Augmentation()).numpy())  # all-zero settings: untouched
    aug = Augmentation(speed=0.2, noise=1.0)
    first = batch(aug)
    assert np.array_equal(first.numpy(), batch(aug).numpy())  # a resumed run sees the same batch
    assert not np.array_equal(first.numpy()[:, :plain.shape[1] - 4000], plain.numpy()[:, :plain.shape[1] - 4000])


def test_loader_names_each_clip_by_its_version_for_the_feature_cache(tmp_path):
    path = tmp_path / "c.flac"
    sf.write(path, tone(150.0, 1.0), SR)
    entries = [Entry(path=path, samples=SR, uid="utt1")]
    aug = Augmentation(speed=0.1, speed_steps=3)
    names = {}
    for epoch in range(12):
        b = AudioDataset(entries, [[0]], 64000, 3, epoch, False, False, augment=aug)[0]
        names[b.ids[0]] = int(b.lengths[0])
    # the manifest id plus the version; each version has its own length (SR / factor samples)
    assert set(names) == {"utt1", "utt1@speed=0.9", "utt1@speed=1.1"}
    assert names["utt1@speed=0.9"] > names["utt1"] > names["utt1@speed=1.1"]
    assert AudioDataset(entries, [[0]], 64000, 3, 0, False, False)[0].ids == ["utt1"]


def test_fine_tuning_caches_features_only_when_the_audio_repeats():
    from w2v2.model import preset
    from w2v2.train.config import TrainConfig
    from w2v2.train.finetune import features_repeat

    frozen = preset("tiny").__class__.from_dict({**preset("tiny").to_dict(), "feature_grad_mult": 0.0})
    train = [Entry(path="a.flac", samples=32000)]
    assert features_repeat(TrainConfig(max_sample_size=64000), frozen, train)
    assert not features_repeat(TrainConfig(max_sample_size=16000), frozen, train)  # random crops
    assert not features_repeat(TrainConfig(max_sample_size=64000, augment_noise=0.5), frozen, train)
    assert not features_repeat(TrainConfig(max_sample_size=64000), preset("tiny"), train)  # trained encoder
    speeds = {"augment_speed": 0.1, "augment_speed_steps": 3}  # a few fixed versions: cached each
    assert features_repeat(TrainConfig(max_sample_size=64000, **speeds), frozen, train)
    assert not features_repeat(TrainConfig(max_sample_size=64000, augment_speed=0.1), frozen, train)
    # a clip slowed to 0.9 is 35,556 samples: past a 35,000-sample limit it would be cropped at random
    assert not features_repeat(TrainConfig(max_sample_size=35000, **speeds), frozen, train)
