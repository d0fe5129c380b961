"""Model facts from the paper and the objective's terms against hand computations."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from train_utils import micro_config
from w2v2.model import build_pretraining_model, preset
from w2v2.model.losses import contrastive_logits, diversity_loss
from w2v2.model.masking import compute_mask_indices, sample_negatives
from w2v2.model.quantizer import perplexity


@pytest.mark.parametrize("name,millions", [("base", 95.0), ("large", 317.0), ("large_lv60", 317.0),
                                           ("xlsr_300m", 317.0)])
def test_parameter_counts_match_the_paper(name, millions):
    """BASE 95M, LARGE 317M (paper section 4.2; the fairseq checkpoints have 95.0M / 317.4M)."""
    with torch.device("meta"):
        model = build_pretraining_model(preset(name))
    n = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(n - millions) / millions < 0.01, n


def test_frame_rate_and_receptive_field():
    cfg = preset("base")
    assert cfg.frame_stride == 320 and cfg.receptive_field == 400  # 20 ms stride, 25 ms field (section 2)


def run(model, x, seed=0):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    return model(x, rng=rng)


def run_fixed(model, x, mask, negatives, seed):
    torch.manual_seed(seed)
    return model(x, mask_indices=mask, negatives=negatives)


def test_loss_terms_against_hand_computation():
    torch.manual_seed(0)
    cfg = micro_config(encoder_layerdrop=0.0)
    model = build_pretraining_model(cfg).eval()
    x = torch.randn(2, 16000)
    out = run(model, x)
    f = model.wav2vec2.features(x)
    # feature penalty: mean squared feature-encoder output (fairseq features_pen)
    z, _ = model.wav2vec2.feature_extractor(x)
    assert out.penalty.item() == pytest.approx(z.pow(2).mean().item(), rel=1e-6)
    # diversity, paper eq. 4 (entropy form) and fairseq's perplexity form, from the softmax by hand
    mask = compute_mask_indices([f.normed.shape[1]] * 2, f.normed.shape[1], cfg.mask_prob, cfg.mask_length,
                                cfg.mask_min_masks, np.random.default_rng(0))
    logits = model.quantizer.weight_proj(f.normed[torch.from_numpy(mask)]).view(-1, cfg.latent_groups, cfg.latent_vars)
    p = torch.softmax(logits, -1).mean(0)  # p_bar_g: (G, V)
    gv = cfg.latent_groups * cfg.latent_vars
    entropy = -(p * torch.log(p)).sum(-1)  # H(p_bar_g)
    assert diversity_loss(p, perplexity(p), "entropy").item() == pytest.approx((-entropy).sum().item() / gv, rel=1e-4)
    assert out.diversity.item() == pytest.approx((gv - torch.exp(entropy).sum().item()) / gv, rel=1e-4)
    # the total is fairseq's weighted sum, per masked step
    n = out.sample_size
    total = out.contrastive / n + cfg.diversity_weight * out.diversity + cfg.feature_pen_weight * out.penalty
    assert out.loss.item() == pytest.approx(total.item(), rel=1e-6)


def test_contrastive_logits_by_hand():
    c = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [1.0, 0.0], [1.0, 0.0]]])
    q = torch.tensor([[[1.0, 1.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]]])  # steps 0 and 2 have equal targets
    negs = torch.tensor([[[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]])
    logits = contrastive_logits(c, q, negs, 0.1)
    r = 1 / math.sqrt(2)
    expected = torch.tensor([[r, 0.0, float("-inf"), -1.0],  # the 2nd distractor equals the target
                             [1.0, r, r, 0.0],
                             [r, float("-inf"), 0.0, -1.0],
                             [-1.0, r, 0.0, r]]) / 0.1
    assert torch.allclose(logits[0], expected)


def test_contrastive_logits_equal_the_gathered_cosines_of_fairseq():
    """Reference: fairseq's form, distractors gathered into (B, M, K, D) and F.cosine_similarity,
    -inf where a distractor equals its target; values and gradients."""
    g = torch.Generator().manual_seed(0)
    b, m, k, d = 3, 40, 100, 16
    c = torch.randn(b, m, d, generator=g, requires_grad=True)
    y = torch.randn(b, m, d, generator=g)
    y[:, 5] = y[:, 7]  # duplicated targets (the same codewords chosen twice)
    y = y.requires_grad_()
    from w2v2.model.masking import sample_negatives
    idx = sample_negatives(b, m, k, generator=g)
    negs = y[torch.arange(b).view(b, 1, 1), idx]
    ref = F.cosine_similarity(c.unsqueeze(2), torch.cat([y.unsqueeze(2), negs], 2), dim=-1) / 0.1
    ref = torch.cat([ref[..., :1], ref[..., 1:].masked_fill((negs == y.unsqueeze(2)).all(-1), float("-inf"))], -1)
    ours = contrastive_logits(c, y, idx, 0.1)
    assert torch.isinf(ref).sum() > 0 and torch.equal(torch.isinf(ours), torch.isinf(ref))
    finite = torch.isfinite(ref)
    assert torch.allclose(ours[finite], ref[finite], atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the cosines stay in fp32 under autocast
        under_autocast = contrastive_logits(c, y, idx, 0.1)
    assert torch.allclose(under_autocast[finite], ours[finite], atol=1e-6)
    grads = [torch.autograd.grad(torch.log_softmax(v, -1)[..., 0].sum(), (c, y)) for v in (ours, ref)]
    for a, r in zip(*grads):
        assert torch.allclose(a, r, atol=1e-5)


def test_gradients_reach_the_codebook_and_feature_encoder_scale_applies():
    x = torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    no_dropout = dict(encoder_layerdrop=0.0, dropout=0.0, dropout_input=0.0, dropout_features=0.0,
                      attention_dropout=0.0)
    torch.manual_seed(0)
    full = build_pretraining_model(micro_config(feature_grad_mult=1.0, **no_dropout))
    scaled = build_pretraining_model(micro_config(feature_grad_mult=0.1, **no_dropout))
    scaled.load_state_dict(full.state_dict())
    for model in (full, scaled):
        run(model, x).loss.backward()
        cb = model.quantizer.codevectors.grad
        assert cb is not None and cb.abs().sum() > 0  # targets are not detached: the codebook learns
    conv = lambda m: m.wav2vec2.feature_extractor.conv_layers[0].conv.weight.grad  # noqa: E731
    assert torch.allclose(scaled.final_proj.weight.grad, full.final_proj.weight.grad, atol=1e-7)
    assert (conv(scaled) - 0.1 * conv(full)).abs().max() <= 1e-4 * conv(scaled).abs().max()


def test_eval_mode_is_deterministic_and_train_mode_samples():
    torch.manual_seed(0)
    model = build_pretraining_model(micro_config(encoder_layerdrop=0.0, dropout=0.0, dropout_input=0.0,
                                                 dropout_features=0.0, attention_dropout=0.0))
    x = torch.randn(2, 16000)
    t = int(model.wav2vec2.feature_extractor.output_lengths(torch.tensor(16000)))
    mask = model.compute_masks([t, t], t, np.random.default_rng(0))
    negatives = sample_negatives(2, int(mask[0].sum()), model.cfg.num_negatives,
                                 generator=torch.Generator().manual_seed(0))
    fixed = lambda seed: run_fixed(model, x, mask, negatives, seed)  # noqa: E731 - same masks and negatives
    model.eval()  # argmax codes, no dropout: the torch seed does not matter
    a, b = fixed(0), fixed(1)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.codes, b.codes)
    assert torch.equal(a.logits, fixed(0).logits)
    model.train()  # no dropout here: only the Gumbel noise of the targets' codes depends on the seed
    c, d = fixed(0), fixed(1)
    assert torch.equal(c.logits, fixed(0).logits) and not torch.allclose(c.logits, d.logits)
    model.set_num_updates(0)
    assert model.quantizer.temperature == pytest.approx(2.0)
    model.set_num_updates(10_000_000)
    assert model.quantizer.temperature == pytest.approx(0.5)  # tau_min (section 4.2)


def test_negatives_come_from_other_masked_steps_only():
    from w2v2.model.masking import sample_negatives

    idx = sample_negatives(3, 40, 100, generator=torch.Generator().manual_seed(0))
    own = torch.arange(40).view(1, 40, 1)
    assert idx.shape == (3, 40, 100)
    assert not (idx == own).any() and idx.min() >= 0 and idx.max() < 40
    counts = torch.bincount(idx[:, 5].flatten(), minlength=40).float()
    assert counts[5] == 0 and counts[counts > 0].numel() == 39  # uniform over the 39 others


def test_mask_copies_score_like_a_batch_of_duplicated_clips():
    """Multi-mask (``mask_copies``, data2vec 2.0): n masked copies of each clip over one
    feature-encoder pass give exactly the loss and gradients of the plain model on the batch with
    each clip repeated n times (same seeds: same masks, distractors and Gumbel noise), while the
    feature encoder sees only the B original clips; evaluation scores one copy."""
    cfg = micro_config(dropout=0.0, attention_dropout=0.0, dropout_input=0.0, dropout_features=0.0, mask_copies=2)
    torch.manual_seed(0)
    multi = build_pretraining_model(cfg).train()
    single = build_pretraining_model(dataclasses.replace(cfg, mask_copies=1)).train()
    single.load_state_dict(multi.state_dict())
    x = torch.randn(3, 8000)
    lengths = torch.tensor([8000, 7200, 6400])
    seen = []
    multi.wav2vec2.feature_extractor.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    rng_m, rng_s = np.random.default_rng(5), np.random.default_rng(5)
    torch.manual_seed(1)
    out_m = multi(x, lengths, rng=rng_m)
    torch.manual_seed(1)
    out_s = single(x.repeat_interleave(2, 0), lengths.repeat_interleave(2), rng=rng_s)
    assert seen == [3]
    assert out_m.sample_size == out_s.sample_size and out_m.logits.shape[0] == 6
    torch.testing.assert_close(out_m.loss, out_s.loss)
    out_m.loss.backward()
    out_s.loss.backward()
    with_grad = [name for name, p in multi.named_parameters() if p.grad is not None]
    assert with_grad == [name for name, p in single.named_parameters() if p.grad is not None]
    assert len(with_grad) > 0.9 * len(list(multi.parameters()))
    for (name, pm), ps in zip(multi.named_parameters(), single.parameters()):
        if pm.grad is not None:
            torch.testing.assert_close(pm.grad, ps.grad, rtol=1e-4, atol=1e-6, msg=name)
    multi.eval()
    with torch.no_grad():
        assert multi(x, lengths, rng=np.random.default_rng(0)).logits.shape[0] == 3


@pytest.mark.parametrize("exporting", [False, True])
@pytest.mark.parametrize("groups, affine", [(6, True), (2, True), (6, False)])
def test_masked_group_norm_is_group_norm_of_each_utterance_alone(groups, affine, exporting, monkeypatch):
    """Against torch's GroupNorm of each utterance's valid frames alone (values and gradients), with
    an offset mean (E[x^2] - E[x]^2 would cancel badly) and garbage in the padding; eagerly and in the
    masked-sums form of an exported graph."""
    from w2v2.model.feature_encoder import masked_group_norm

    monkeypatch.setattr(torch.compiler, "is_exporting", lambda: exporting)

    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(groups, 6, affine=affine)
    if affine:
        with torch.no_grad():
            norm.weight.uniform_(0.5, 2.0)
            norm.bias.uniform_(-1.0, 1.0)
    lengths = torch.tensor([50, 23, 5, 37])
    x = 3.0 + 2.0 * torch.randn(4, 6, 50, dtype=torch.float64).float()
    for i, n in enumerate(lengths):
        x[i, :, n:] = 1e4  # padding must not enter the statistics
    x.requires_grad_(True)
    y = masked_group_norm(x, lengths, norm)
    ref = [norm(x[i:i + 1, :, :n]) for i, n in enumerate(lengths)]
    for i, n in enumerate(lengths):
        assert torch.allclose(y[i, :, :n], ref[i][0], atol=2e-5), i
    w = torch.randn(4, 6, 50)
    mask = (torch.arange(50) < lengths[:, None])[:, None, :]
    grad, = torch.autograd.grad((y * w * mask).sum(), x)
    grad_ref, = torch.autograd.grad(sum((r[0] * w[i, :, :n]).sum() for i, (r, n) in enumerate(zip(ref, lengths))), x)
    assert torch.allclose(grad, grad_ref, atol=1e-4)
    # one frame, which nn.GroupNorm refuses with one value a group: variance 0, so the bias (up to the
    # rounding of x / sqrt(eps) - mean / sqrt(eps), as in torch's fused kernel)
    one = masked_group_norm(x[:1, :, :1], torch.tensor([1]), norm)
    expected = norm(x[:1, :, :1]) if groups < 6 else norm.bias.view(1, 6, 1) if affine else torch.zeros(1, 6, 1)
    assert torch.allclose(one, expected, atol=1e-3)
