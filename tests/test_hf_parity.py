"""w2v2 against transformers' Wav2Vec2 (the acceptance tests of the model issue)."""

import numpy as np
import pytest
import torch

from hf_oracle import build, padded_batch, transformers
from w2v2.interop.hf import import_hf
from w2v2.interop.model_dir import model_for_state, load_state
from w2v2.model.masking import compute_mask_indices, lengths_to_mask

TOL = 1e-5


def imported(hf_model, tmp_path):
    hf_model.save_pretrained(tmp_path)
    cfg, sd, vocab = import_hf(tmp_path)
    model = model_for_state(cfg, set(sd))
    load_state(model, sd, str(tmp_path))
    return model.eval(), cfg, vocab


def valid(a, frame_mask):
    return a[frame_mask] if frame_mask is not None else a


@pytest.mark.parametrize("layout", ["group", "layer"])
def test_hidden_states_match(layout, tmp_path):
    hf = build("Wav2Vec2Model", layout)
    ours, cfg, _ = imported(hf, tmp_path)
    x, mask, lengths = padded_batch()
    use_mask = layout == "layer"  # group-norm models are run without attention mask, as released
    with torch.no_grad():
        ref = hf(x, attention_mask=mask if use_mask else None, output_hidden_states=True)
        out = ours(x, lengths if use_mask else None, return_hidden=True)
    fm = lengths_to_mask(out.lengths, out.last_hidden_state.shape[1]) if use_mask else None
    assert len(out.hidden_states) == len(ref.hidden_states) == cfg.encoder_layers + 1
    for mine, theirs in zip(out.hidden_states, ref.hidden_states):
        assert (valid(mine, fm) - valid(theirs, fm)).abs().max() <= TOL
    assert (valid(out.last_hidden_state, fm) - valid(ref.last_hidden_state, fm)).abs().max() <= TOL
    assert out.last_hidden_state.shape == ref.last_hidden_state.shape


@pytest.mark.parametrize("layout", ["group", "layer"])
def test_ctc_logits_match(layout, tmp_path):
    hf = build("Wav2Vec2ForCTC", layout)
    vocab = {f"<t{i}>": i for i in range(12)}
    (tmp_path / "vocab.json").write_text(__import__("json").dumps(vocab))
    ours, cfg, ours_vocab = imported(hf, tmp_path)
    x, mask, lengths = padded_batch()
    use_mask = layout == "layer"
    with torch.no_grad():
        ref = hf(x, attention_mask=mask if use_mask else None).logits
        out = ours(x, lengths if use_mask else None)
    fm = lengths_to_mask(out.lengths, ref.shape[1]) if use_mask else None
    assert (valid(out.logits, fm) - valid(ref, fm)).abs().max() <= TOL
    assert ours_vocab == vocab


def hf_pretrain_inputs(hf, x, lengths, seed=0):
    """Masks from transformers' own helpers, converted to w2v2's (B, M, K) negative indices."""
    frames = int(hf._get_feat_extract_output_lengths(torch.tensor(x.shape[1])))
    rng_state = np.random.get_state()
    np.random.seed(seed)
    mk = transformers.models.wav2vec2.modeling_wav2vec2
    mask = mk._compute_mask_indices((x.shape[0], frames), mask_prob=0.5, mask_length=4, min_masks=2)
    # equal counts per row (w2v2 gathers masked steps as a (B, M) block): keep the first m
    m = int(mask.sum(1).min())
    for row in mask:
        row[np.flatnonzero(row)[m:]] = False
    neg = mk._sample_negative_indices((x.shape[0], frames), 10, mask)
    np.random.set_state(rng_state)
    ranks = np.cumsum(mask, axis=1) - 1  # position -> rank among masked steps
    ours = np.zeros((x.shape[0], m, 10), dtype=np.int64)
    for b in range(x.shape[0]):
        pos = np.flatnonzero(mask[b])
        flat = neg[b, pos] - b * frames
        ours[b] = ranks[b][flat]
    return torch.from_numpy(mask), torch.from_numpy(neg), torch.from_numpy(ours)


@pytest.mark.parametrize("layout", ["group", "layer"])
def test_pretraining_matches(layout, tmp_path):
    hf = build("Wav2Vec2ForPreTraining", layout)
    ours, cfg, _ = imported(hf, tmp_path)
    x, _, lengths = padded_batch((12000, 12000, 12000))
    mask, hf_neg, neg = hf_pretrain_inputs(hf, x, lengths)
    with torch.no_grad():
        ref = hf(x, mask_time_indices=mask, sampled_negative_indices=hf_neg)
        out = ours(x, mask_indices=mask, negatives=neg)
        # quantized vectors at every frame, and the code perplexity over the masked frames
        f = ours.wav2vec2.features(x)
        q_all = ours.quantizer(f.normed.reshape(-1, f.normed.shape[-1]))
        q_masked = ours.quantizer(f.normed[mask])
    proj = ours.project_q(q_all.quantized).view_as(ref.projected_quantized_states)
    assert (proj - ref.projected_quantized_states).abs().max() <= TOL
    # fairseq's log(p + 1e-7) against transformers' xlogy: equal to well within 1e-4 relative
    assert q_masked.code_perplexity.item() == pytest.approx(ref.codevector_perplexity.item(), rel=1e-4)
    assert out.contrastive.item() == pytest.approx(ref.contrastive_loss.item(), rel=1e-5, abs=1e-4)
    gv = cfg.latent_vars * cfg.latent_groups
    div_hf_form = (gv - q_masked.code_perplexity) / gv * mask.sum()  # eval mode: hard perplexity
    assert div_hf_form.item() == pytest.approx(ref.diversity_loss.item(), rel=1e-4)


def test_padded_batch_matches_single_utterances(tmp_path):
    """Layer-norm layout with a key mask: padding does not change the valid frames."""
    hf = build("Wav2Vec2Model", "layer")
    ours, _, _ = imported(hf, tmp_path)
    x, _, lengths = padded_batch()
    with torch.no_grad():
        batch = ours(x, lengths)
        for i, n in enumerate(lengths.tolist()):
            single = ours(x[i:i + 1, :n]).last_hidden_state[0]
            assert (batch.last_hidden_state[i, :single.shape[0]] - single).abs().max() <= TOL
