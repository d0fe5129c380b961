"""w2v2's fairseq importer against fairseq itself (optional ``fairseq`` extra).

Checkpoints are written in fairseq's formats by small fairseq models, imported by w2v2 in a
process where fairseq and omegaconf cannot be imported, and compared in evaluation mode.
"""

import numpy as np
import pytest
import torch

from fairseq_oracle import (build_ctc, build_pretraining, fairseq, import_without_fairseq, padded_batch,
                            pretraining_cfg, save_checkpoint)
from w2v2.interop.fairseq import config_from_fairseq, import_fairseq
from w2v2.interop.model_dir import PREFIX, load_model_dir, load_state, model_for_state
from w2v2.model.masking import lengths_to_mask, sample_negatives

pytestmark = pytest.mark.fairseq
TOL = 1e-5


def imported(path, **kw):
    cfg, sd, vocab = import_fairseq(path, **kw)
    model = model_for_state(cfg, set(sd))
    load_state(model, sd, str(path))
    return model.eval(), cfg, vocab


ENCODERS = [("group", "dictconfig", True), ("layer", "container", False), ("layer", "args", False)]
LETTERS = ["|", "A", "B", "C", "'", "D"]


@pytest.fixture(scope="module")
def imported_dirs(tmp_path_factory):
    """fairseq models, their checkpoints imported by ``w2v2 import`` in one process without fairseq:
    {name: (fairseq model, w2v2 model directory)}."""
    tmp = tmp_path_factory.mktemp("fairseq")
    refs, jobs = {}, []
    for layout, style, legacy_zip in ENCODERS:
        name = f"{layout}-{style}"
        refs[name] = build_pretraining(layout)
        jobs.append((save_checkpoint(tmp / f"{name}.pt", refs[name].state_dict(), pretraining_cfg(layout), style,
                                     legacy_zip), tmp / name, []))
    refs["ctc"], cfg_ft = build_ctc("layer", vocab_size=4 + len(LETTERS))
    cfg_ft["task"]["data"] = str(tmp)  # where fairseq's own loader finds dict.ltr.txt
    (tmp / "dict.ltr.txt").write_text("".join(f"{s} {100 - i}\n" for i, s in enumerate(LETTERS)))
    jobs.append((save_checkpoint(tmp / "ctc.pt", refs["ctc"].state_dict(), cfg_ft, "dictconfig"), tmp / "ctc",
                 ["--dict", str(tmp / "dict.ltr.txt")]))
    run = import_without_fairseq(jobs)
    assert run.returncode == 0, run.stderr
    return {name: (refs[name], tmp / name) for name in refs}


def test_checkpoints_are_what_fairseq_loads(imported_dirs, monkeypatch):
    """The oracle's files are real fairseq checkpoints: fairseq's own loader rebuilds the same
    models from them (it needs torch.load's weights_only=False since torch 2.6)."""
    from fairseq import checkpoint_utils

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    tasks = {}
    for name, (ref, model_dir) in imported_dirs.items():
        models, _, tasks[name] = checkpoint_utils.load_model_ensemble_and_task([str(model_dir) + ".pt"])
        theirs = models[0].state_dict()
        assert type(models[0]) is type(ref) and all(torch.equal(theirs[k], v) for k, v in ref.state_dict().items())
    # fairseq's target dictionary: the blank <s> at 0, <pad> at 1, then dict.ltr.txt
    assert tasks["ctc"].target_dictionary.symbols == ["<s>", "<pad>", "</s>", "<unk>"] + LETTERS


@pytest.mark.parametrize("layout,style,legacy_zip", ENCODERS)
def test_encoder_output_matches_fairseq(imported_dirs, layout, style, legacy_zip):
    ref, model_dir = imported_dirs[f"{layout}-{style}"]
    model, cfg, _ = load_model_dir(model_dir)
    assert type(model).__name__ == "Wav2Vec2ForPreTraining" and cfg.origin == "fairseq"
    assert cfg.normalize == (layout == "layer")
    assert (cfg.diversity_weight, cfg.feature_pen_weight) == ((0.1, 0.0) if layout == "layer" else (0.1, 10.0))
    # group-norm models are run unpadded, as released; layer-norm models with a padding mask
    x, pad, lengths = padded_batch() if layout == "layer" else padded_batch((8000, 8000))
    with torch.no_grad():
        theirs = ref.extract_features(x, pad if layout == "layer" else None, mask=False)["x"]
        ours = model.wav2vec2(x, lengths if layout == "layer" else None)
    valid = lengths_to_mask(ours.lengths, theirs.shape[1]) if layout == "layer" else torch.ones(theirs.shape[:2], dtype=bool)
    assert ours.last_hidden_state.shape == theirs.shape
    assert (ours.last_hidden_state[valid] - theirs[valid]).abs().max() <= TOL


def test_finetuned_ctc_logits_and_dictionary(imported_dirs):
    ref, model_dir = imported_dirs["ctc"]
    model, cfg, vocab = load_model_dir(model_dir)
    # fairseq's blank is <s> at index 0; w2v2 (like transformers) calls index 0 "<pad>"; no row moves
    assert vocab == {t: i for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>"] + LETTERS)}
    assert cfg.vocab_size == 10 and cfg.normalize  # normalize: ${task.normalize} resolved
    assert (cfg.mask_prob, cfg.mask_channel_prob, cfg.mask_channel_length) == (0.5, 0.25, 8)
    assert (cfg.encoder_layerdrop, cfg.final_dropout, cfg.feature_grad_mult) == (0.1, 0.05, 0.0)
    assert torch.equal(model.lm_head.weight, ref.w2v_encoder.proj.weight)
    x, pad, lengths = padded_batch()
    with torch.no_grad():
        theirs = ref(source=x, padding_mask=pad)["encoder_out"].transpose(0, 1)  # (B, T, V)
        ours = model(x, lengths)
    valid = lengths_to_mask(ours.lengths, theirs.shape[1])
    assert (ours.logits[valid] - theirs[valid]).abs().max() <= TOL
    assert torch.equal(ours.logits[valid].argmax(-1), theirs[valid].argmax(-1))


def test_finetuned_legacy_args_checkpoint(tmp_path):
    """argparse-era checkpoint, no --dict (LibriSpeech letters assumed), and fairseq's blank_weight
    (added to the blank logit by Wav2VecCtc.get_logits) folded into the head's bias."""
    ref, cfg_ft = build_ctc("group", vocab_size=32, seed=3, blank_weight=0.7)
    src = save_checkpoint(tmp_path / "ft.pt", ref.state_dict(), cfg_ft, "args")
    with pytest.warns(UserWarning, match="LibriSpeech letter dictionary"):
        model, cfg, vocab = imported(src)
    assert list(vocab)[:6] == ["<pad>", "<s>", "</s>", "<unk>", "|", "E"] and len(vocab) == 32
    x, _, _ = padded_batch((8000, 8000))
    with torch.no_grad():
        theirs = ref.get_logits(ref(source=x, padding_mask=None)).transpose(0, 1)
        ours = model(x).logits
    assert (ours - theirs).abs().max() <= TOL


def fixed_negatives(neg: torch.Tensor):
    """fairseq's sample_negatives (torch's global RNG) replaced by w2v2's (B, M, K) indices into the
    masked steps, in fairseq's layout: negatives (K, B, M, C) and flat indices b * M + j."""

    def sample(y, num, padding_count=None):
        b, m, c = y.shape
        flat = (neg + torch.arange(b).view(b, 1, 1) * m).reshape(b, -1)
        return y.reshape(-1, c)[flat.view(-1)].view(b, m, neg.shape[-1], c).permute(2, 0, 1, 3), flat

    return sample


@pytest.mark.parametrize("layout", ["group", "layer"])
def test_pretraining_loss_matches_wav2vec_criterion(tmp_path, layout):
    from fairseq.criterions.wav2vec_criterion import Wav2vecCriterion

    ref = build_pretraining(layout, seed=5)
    src = save_checkpoint(tmp_path / "ckpt.pt", ref.state_dict(), pretraining_cfg(layout))
    ours, cfg, _ = imported(src)
    x, _, _ = padded_batch((8000, 8000, 8000), seed=2)
    frames = ours.wav2vec2.feature_extractor.output_lengths(torch.tensor(8000)).item()
    rng = np.random.default_rng(0)
    mask = torch.zeros(3, frames, dtype=torch.bool)
    for row in mask:  # the same number of masked steps per utterance, as both implementations require
        row[rng.choice(frames, 11, replace=False)] = True
    neg = sample_negatives(3, 11, cfg.num_negatives, generator=torch.Generator().manual_seed(0))
    ref.sample_negatives = fixed_negatives(neg)
    weights = [cfg.diversity_weight, cfg.feature_pen_weight]
    crit = Wav2vecCriterion(None, infonce=True, loss_weights=weights, log_keys=["prob_perplexity", "code_perplexity"])
    with torch.no_grad():
        loss, sample_size, log = crit(ref, {"net_input": {"source": x, "mask_indices": mask}, "id": torch.arange(3)})
        out = ours(x, mask_indices=mask, negatives=neg)
    n = out.sample_size
    assert n == int(sample_size) == 33
    assert out.contrastive.item() == pytest.approx(log["loss_0"], rel=1e-5)
    assert (weights[0] * out.diversity * n).item() == pytest.approx(log["loss_1"], rel=1e-5)
    if weights[1]:
        assert (weights[1] * out.penalty * n).item() == pytest.approx(log["loss_2"], rel=1e-5)
    assert (out.loss * n).item() == pytest.approx(loss.item(), rel=1e-5)
    assert out.prob_perplexity.item() == pytest.approx(log["prob_perplexity"], rel=1e-5)
    assert out.code_perplexity.item() == pytest.approx(log["code_perplexity"], rel=1e-5)
    assert (out.correct, out.count) == (log["correct"], log["count"])


# the one field where w2v2's preset departs from fairseq's yaml (reported to the presets' owner)
PRESET_DIFFERENCES: dict[str, dict] = {}  # none: the presets are fairseq's released configs


@pytest.mark.parametrize("yaml_name,preset_name", [("wav2vec2_base_librispeech", "base"),
                                                   ("wav2vec2_large_librivox", "large_lv60")])
def test_released_pretraining_configs_map_to_presets(yaml_name, preset_name):
    """fairseq's own pre-training yaml (merged over its Wav2Vec2Config, as hydra does) gives w2v2's
    preset (channel masks are off in pre-training, so their length does not count)."""
    from pathlib import Path

    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config
    from omegaconf import OmegaConf

    from w2v2.model.presets import preset

    path = Path(fairseq.__file__).parent / "examples/wav2vec/config/pretraining" / f"{yaml_name}.yaml"
    if not path.is_file():
        pytest.skip(f"{path} is not shipped with this fairseq")
    y = OmegaConf.load(path)
    model = OmegaConf.merge(OmegaConf.structured(Wav2Vec2Config), {k: v for k, v in y.model.items() if k != "_name"})
    ours = config_from_fairseq({"model": OmegaConf.to_container(model, resolve=True, enum_to_str=True),
                                "task": OmegaConf.to_container(y.task),
                                "criterion": OmegaConf.to_container(y.criterion)}).to_dict()
    want = preset(preset_name).to_dict()
    diff = {k: (ours[k], want[k]) for k in ours if ours[k] != want[k] and k not in ("origin", "mask_channel_length")}
    assert diff == PRESET_DIFFERENCES.get(preset_name, {})


def test_state_keys_cover_fairseq_model(tmp_path):
    """Every fairseq tensor lands in the w2v2 model (nothing silently dropped) and the fused
    attention projection is cat(q, k, v)."""
    ref = build_pretraining("layer")
    src = save_checkpoint(tmp_path / "ckpt.pt", ref.state_dict(), pretraining_cfg("layer"))
    model, _, _ = imported(src)
    theirs, ours = ref.state_dict(), model.state_dict()
    assert sum(v.numel() for v in theirs.values()) == sum(v.numel() for v in ours.values())
    qkv = ours[PREFIX + "encoder.layers.1.attention.qkv.weight"]
    layer = "encoder.layers.1.self_attn."
    assert torch.equal(qkv, torch.cat([theirs[layer + p + "_proj.weight"] for p in "qkv"]))
    assert torch.equal(ours["quantizer.codevectors"], theirs["quantizer.vars"])


@pytest.mark.parametrize("layout", ["group", "layer"])
def test_fresh_models_start_like_fairseq(layout):
    """Initialization: every weight of a fresh w2v2 model has the spread of the same weight in a
    fresh fairseq model (conv kaiming-normal, BERT-style Transformer layers, N(0, 1) quantizer
    projection, uniform codebook and mask embedding, PyTorch defaults elsewhere)."""
    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Model
    from fairseq_oracle import model_config, model_section
    from w2v2.interop.fairseq import state_from_fairseq
    from w2v2.model import build_pretraining_model

    torch.manual_seed(0)
    theirs = state_from_fairseq(Wav2Vec2Model(model_config(layout)).state_dict(), "fresh fairseq model")
    ours = build_pretraining_model(config_from_fairseq(model_section(model_config(layout)))).state_dict()
    compared = 0
    for name, t in theirs.items():
        if t.numel() < 256 or not t.is_floating_point():
            continue
        mine, se = ours[name].float(), t.std() / t.numel() ** 0.5  # 5 standard errors of two samples
        assert abs(mine.std() - t.std()) <= 5 * se, (name, mine.std(), t.std())
        assert abs(mine.mean() - t.mean()) <= 5 * 2 ** 0.5 * se + 1e-6, (name, mine.mean(), t.mean())
        compared += 1
    assert compared >= 15
