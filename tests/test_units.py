"""Unit targets (``target_units``): MFCC frames aligned with the feature encoder, k-means centres,
HuBERT's masked-prediction loss, and the option's wiring (config, checkpoints, export, CLI)."""

import dataclasses

import numpy as np
import pytest
import scipy.fft
import torch
import torch.nn.functional as F

from train_utils import micro_config, tiny_train_args, write_corpus
from w2v2.cli import main
from w2v2.config import W2V2Config
from w2v2.data.manifest import read_manifest
from w2v2.interop.hf import export_hf
from w2v2.interop.model_dir import load_model_dir, save_model_dir, state_kind
from w2v2.model import build_pretraining_model
from w2v2.model.feature_encoder import num_frames
from w2v2.model.units import MfccFrames, dct_matrix, deltas, mel_filterbank
from w2v2.train.units import fit_unit_centres, unit_centres


def unit_config(**kw) -> W2V2Config:
    return micro_config(quantize_targets=False, target_units=8, **kw)


def fitted_model(cfg: W2V2Config, seed: int = 0):
    torch.manual_seed(seed)
    model = build_pretraining_model(cfg)
    frames = model.units.frames(torch.randn(4, 8000), 24).reshape(-1, 39)
    model.units.centres.copy_(unit_centres(frames.numpy(), cfg.target_units, 0))
    return model


# -- MFCCs ------------------------------------------------------------------------------------------
def test_mel_filterbank_matches_transformers():
    audio_utils = pytest.importorskip("transformers.audio_utils")
    theirs = audio_utils.mel_filter_bank(num_frequency_bins=257, num_mel_filters=40, min_frequency=20.0,
                                         max_frequency=8000.0, sampling_rate=16000, norm=None, mel_scale="htk")
    np.testing.assert_allclose(mel_filterbank(512, 40, 16000).numpy(), theirs, atol=1e-6)


def test_dct_matrix_is_scipys_orthonormal_dct2():
    x = np.random.default_rng(0).standard_normal((5, 40))
    ours = (torch.from_numpy(x).float() @ dct_matrix(40, 13)).numpy()
    np.testing.assert_allclose(ours, scipy.fft.dct(x, type=2, norm="ortho")[:, :13], atol=1e-5)


def test_deltas_of_a_ramp_are_its_slope():
    x = (0.5 * torch.arange(20.0)).view(1, 20, 1).repeat(1, 1, 3)
    d = deltas(x)
    torch.testing.assert_close(d[:, 2:-2], torch.full((1, 16, 3), 0.5))
    # edges repeat the end frame: at t = 0 the window reads x0, x0, x0, x1, x2 -> (1*0.5 + 2*1.0) / 10
    torch.testing.assert_close(d[0, 0], torch.full((3,), 0.25))


@pytest.mark.parametrize("samples", [400, 401, 719, 720, 16000, 23456])
def test_mfcc_frame_t_reads_the_conv_stacks_frame_t(samples):
    """As many frames as the paper's conv stack, and frame t computed from samples [320 t, 320 t + 400)
    alone equals frame t of the whole clip."""
    cfg = W2V2Config()
    mfcc = MfccFrames(cfg.receptive_field, cfg.frame_stride)
    wav = torch.randn(1, samples)
    t = num_frames(cfg.conv_layers, samples)
    assert t == (samples - 400) // 320 + 1
    ceps = mfcc.cepstra(wav, t)
    for i in sorted({0, t // 2, t - 1}):
        alone = mfcc.cepstra(wav[:, 320 * i:320 * i + 400], 1)[0, 0]
        torch.testing.assert_close(ceps[0, i], alone, atol=1e-4, rtol=1e-4)


def test_mfcc_of_a_padded_batch_equals_each_utterance_alone():
    mfcc = MfccFrames(400, 320)
    a, b = torch.randn(1, 16000), torch.randn(1, 9000)
    batch = torch.cat([a, F.pad(b, (0, 7000))])
    lengths = torch.tensor([num_frames(W2V2Config().conv_layers, n) for n in (16000, 9000)])
    out = mfcc(batch, int(lengths[0]), lengths)
    torch.testing.assert_close(out[0], mfcc(a, int(lengths[0]))[0])
    torch.testing.assert_close(out[1, :lengths[1]], mfcc(b, int(lengths[1]))[0])
    assert bool((out[1, lengths[1]:] == 0).all())
    valid = out[1, :lengths[1]]  # normalised over its own frames
    torch.testing.assert_close(valid.mean(0), torch.zeros(39), atol=1e-4, rtol=0)
    torch.testing.assert_close(valid.std(0, unbiased=False), torch.ones(39), atol=1e-2, rtol=0)  # up to the 1e-5 floor


def test_mfcc_ignores_the_gain():
    mfcc = MfccFrames(400, 320)
    wav = torch.randn(1, 8000)
    torch.testing.assert_close(mfcc(wav, 24), mfcc(0.05 * wav, 24), atol=1e-3, rtol=1e-3)


# -- k-means centres --------------------------------------------------------------------------------
def test_unit_centres_are_the_blob_means():
    rng = np.random.default_rng(0)
    means = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.concatenate([m + 0.1 * rng.standard_normal((200, 2)) for m in means])
    centres = unit_centres(x, 3, 0).numpy()
    for m in means:
        block = x[np.all(np.abs(x - m) < 1, axis=1)]
        np.testing.assert_allclose(centres[np.argmin(np.linalg.norm(centres - m, axis=1))], block.mean(0), atol=1e-5)


def test_fit_reads_training_audio_up_to_max_frames(tmp_path):
    entries = read_manifest(write_corpus(tmp_path / "audio", n=6))
    cfg = unit_config()
    model = build_pretraining_model(cfg)
    assert not model.units.fitted
    with pytest.raises(RuntimeError, match="not fitted"):
        model.units(torch.randn(1, 4000), 12)
    assert fit_unit_centres(model.units, entries, cfg.conv_layers, seed=0, max_frames=150) == 150
    assert model.units.fitted and bool(torch.isfinite(model.units.centres).all())
    with pytest.raises(ValueError, match="only .* frames"):
        fit_unit_centres(build_pretraining_model(dataclasses.replace(cfg, target_units=400)).units, entries[:1],
                         cfg.conv_layers, seed=0)


# -- the objective ----------------------------------------------------------------------------------
def test_units_are_the_nearest_centres_and_the_loss_their_cross_entropy():
    cfg = unit_config()
    model = fitted_model(cfg).eval()
    wav = torch.randn(2, 8000)
    out = model(wav, None, rng=np.random.default_rng(0))
    t = num_frames(cfg.conv_layers, 8000)
    feats = model.units.frames(wav, t)
    nearest = ((feats[:, :, None, :] - model.units.centres) ** 2).sum(-1).argmin(-1)  # (B, T) by brute force
    masks = model.compute_masks([t, t], t, np.random.default_rng(0))
    assert torch.equal(out.codes[..., 0], nearest[masks].view(2, -1))
    n = out.sample_size
    assert n == int(masks.sum())
    ce = F.cross_entropy(out.logits.reshape(n, -1), out.codes.reshape(n), reduction="sum")
    torch.testing.assert_close(out.contrastive, ce)
    assert out.logits.shape[-1] == cfg.target_units
    assert float(out.logits.detach().abs().max()) <= 1 / cfg.logit_temp + 1e-4  # cosines over the temperature
    torch.testing.assert_close(out.loss, ce / n + cfg.feature_pen_weight * out.penalty)
    assert out.correct == int((out.logits.argmax(-1) == out.codes[..., 0]).sum()) and out.count == n


def test_the_unit_objective_learns_a_batch():
    cfg = unit_config(dropout=0.0, dropout_input=0.0, dropout_features=0.0, encoder_layerdrop=0.0,
                      attention_dropout=0.0)
    model = fitted_model(cfg)
    wav = torch.randn(2, 8000)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        out = model(wav, None, rng=np.random.default_rng(0))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.contrastive.detach()) / out.sample_size)
    assert losses[0] > 1.5 and losses[-1] < 0.5 * losses[0]
    assert model.units.centres.grad is None  # the targets are fixed


@pytest.mark.parametrize("change,message", [
    ({"target_units": 1}, "must be 0"), ({"quantize_targets": True}, "quantize_targets=False"),
    ({"mask_copies": 2}, "mask_copies=1")])
def test_the_config_refuses_what_units_cannot_do(change, message):
    assert unit_config().targets == "units"
    assert (W2V2Config().targets, W2V2Config(quantize_targets=False).targets) == ("codes", "latents")
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(unit_config(), **change)


def test_checkpoints_keep_the_centres_and_hf_export_refuses(tmp_path):
    cfg = unit_config()
    model = fitted_model(cfg)
    save_model_dir(model, cfg, tmp_path / "m")
    loaded, _, _ = load_model_dir(tmp_path / "m")
    assert state_kind(cfg, set(loaded.state_dict())) == "pretraining"
    assert torch.equal(loaded.units.centres, model.units.centres)
    with pytest.raises(ValueError, match="no unit targets"):
        export_hf(model, cfg, None, tmp_path / "hf")


def test_pretrain_cli_fits_the_centres_and_finetune_starts_from_it(tmp_path):
    corpus = write_corpus(tmp_path / "audio", n=8, texts=["a b", "b a c"])
    cfg = unit_config()
    cfg.save(tmp_path / "cfg.json")
    assert main(["pretrain", "--train", str(corpus), "--out", str(tmp_path / "pt"), "--config",
                 str(tmp_path / "cfg.json"), *tiny_train_args(2)]) == 0
    model, _, _ = load_model_dir(tmp_path / "pt" / "best")
    assert model.units.fitted
    assert main(["finetune", "--train", str(corpus), "--valid", str(corpus), "--out", str(tmp_path / "ft"),
                 "--init", str(tmp_path / "pt" / "best"), "--max-updates", "1", "--precision", "fp32",
                 "--num-workers", "0", "--validate-every", "1", "--save-every", "1"]) == 0
    ctc, _, _ = load_model_dir(tmp_path / "ft" / "best")
    assert not any(k.startswith(("units.", "unit_embeddings")) for k in ctc.state_dict())


def test_the_no_learning_warning_knows_unit_chance():
    """With K units chance is log(K), not log(K+1) of the contrastive task's K distractors + 1."""
    from w2v2.train.pretrain import PretrainTask
    cfg = unit_config()
    model = fitted_model(cfg)
    task = PretrainTask(cfg, [], 64000, 1)
    warning = None
    for update in (80, 90, 100):
        task.on_update(model, update, float(update))
        warning = task.check({"contrastive": float(np.log(8)), "acc": 0.125}, update)
    assert warning is not None and "K = 8 units" in warning
    other = PretrainTask(cfg, [], 64000, 1)  # the contrastive task's chance is not the units' chance
    for update in (80, 90, 100):
        other.on_update(model, update, float(update))
        assert other.check({"contrastive": float(np.log(cfg.num_negatives + 1))}, update) is None
