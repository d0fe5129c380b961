"""W2V2Config validation: a value no model can use is refused when the config is made, naming the
field (and the file it came from), whichever way it arrives."""

import dataclasses
import json

import pytest

from w2v2.config import W2V2Config
from w2v2.interop.fairseq import config_from_fairseq
from w2v2.model import PRESETS, build_pretraining_model, preset
from w2v2.train.pretrain import override_config

BAD = [
    ("mask_copies", 0), ("mask_prob", 1.5), ("mask_channel_prob", -0.1), ("mask_length", 0), ("dropout", 2.0),
    ("encoder_layerdrop", -0.5), ("encoder_attention_heads", 5), ("conv_pos_groups", 7), ("latent_groups", 3),
    ("latent_temp", (0.5, 2.0, 0.999)), ("latent_temp", (2.0, 0.5, 1.5)), ("extractor_mode", "batch"),
    ("diversity_form", "kl"), ("logit_temp", 0.0), ("conv_layers", ()), ("conv_layers", ((512, 10, 0),)),
    ("latent_temp", (2.0, 0.5)), ("conv_layers", ((512, 10),)), ("conv_layers", (512, 10, 5)),
    ("num_negatives", 0), ("vocab_size", -1), ("feature_grad_mult", -1.0),
]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_valid_and_builds(name):
    cfg = preset(name)
    cfg.validate()
    assert W2V2Config.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("field,value", BAD)
def test_bad_values_are_refused_naming_the_field(field, value):
    # tiny: 144 wide, 4 heads, 16 position-conv groups, 2 codebook groups of a 128-wide codevector
    with pytest.raises(ValueError, match=f"invalid model config: {field}="):
        dataclasses.replace(preset("tiny"), **{field: value})


def test_set_overrides_are_validated():
    with pytest.raises(ValueError, match="mask_copies=0: must be at least 1"):
        override_config(preset("tiny"), ["mask_copies=0"])
    assert override_config(preset("tiny"), ["mask_copies=3"]).mask_copies == 3


def test_values_of_the_wrong_type_are_refused_before_the_ranges():
    with pytest.raises(ValueError, match="mask_prob='high': must be float"):
        override_config(preset("tiny"), ["mask_prob=high"])  # a bare word is a string
    with pytest.raises(ValueError, match="encoder_layers=2.5: must be int"):
        dataclasses.replace(preset("tiny"), encoder_layers=2.5)
    assert dataclasses.replace(preset("tiny"), mask_prob=1).mask_prob == 1  # an int is a valid float


def test_every_problem_is_listed_at_once():
    with pytest.raises(ValueError) as err:
        dataclasses.replace(preset("tiny"), mask_prob=-1.0, dropout=3.0)
    assert "mask_prob=-1.0" in str(err.value) and "dropout=3.0" in str(err.value)


def test_a_bad_config_file_is_named(tmp_path):
    path = tmp_path / "config.json"
    d = preset("tiny").to_dict()
    d["mask_prob"] = 7
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=f"{path}: invalid model config: mask_prob=7"):
        W2V2Config.load(path)


def test_a_bad_fairseq_config_is_named():
    model = {"_name": "wav2vec2", "encoder_embed_dim": 768, "encoder_attention_heads": 10}
    with pytest.raises(ValueError, match="ckpt.pt: invalid model config: encoder_attention_heads=10"):
        config_from_fairseq({"model": model}, None, "ckpt.pt")


def test_validated_boundaries_still_build():
    """The edges of each range are accepted: no dropout, LayerDrop 1, one mask step, no diversity."""
    cfg = dataclasses.replace(preset("tiny"), dropout=0.0, encoder_layerdrop=1.0, mask_prob=0.0, mask_length=1,
                              mask_min_masks=0, diversity_weight=0.0, feature_grad_mult=0.0,
                              latent_temp=(1.0, 1.0, 1.0))
    build_pretraining_model(cfg)


def test_the_choice_vocabularies_are_those_the_components_implement():
    """Every choice the config accepts builds (the feature encoder's norm layout) or computes (the
    diversity term); a choice the config refuses, the component refuses with the same words."""
    import torch

    from w2v2.config import DIVERSITY_FORMS, EXTRACTOR_MODES
    from w2v2.model.feature_encoder import build_feature_encoder
    from w2v2.model.losses import diversity_loss

    probs = torch.full((2, 4), 0.25)
    for mode in EXTRACTOR_MODES:
        W2V2Config(extractor_mode=mode)
        assert build_feature_encoder(((8, 10, 5),), mode, bias=False)(torch.zeros(1, 400))[0].shape == (1, 79, 8)
    for form in DIVERSITY_FORMS:
        W2V2Config(diversity_form=form)
        assert torch.isfinite(diversity_loss(probs, torch.tensor(8.0), form))
    with pytest.raises(ValueError, match="extractor_mode='batch': must be 'group' or 'layer'"):
        W2V2Config(extractor_mode="batch")
    with pytest.raises(ValueError, match="extractor_mode must be 'group' or 'layer', got 'batch'"):
        build_feature_encoder(((8, 10, 5),), "batch", bias=False)
    with pytest.raises(ValueError, match="diversity_form must be 'perplexity' or 'entropy', got 'kl'"):
        diversity_loss(probs, torch.tensor(8.0), "kl")
