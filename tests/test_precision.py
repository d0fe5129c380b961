"""Training precision per device: bf16 only where the hardware computes it (train/precision.py)."""

import pytest
import torch

from train_utils import cpu_with_bf16
from w2v2.train import precision as P

CPU = torch.device("cpu")


@pytest.mark.parametrize("avx512_bf16,amx,expected", [(False, False, "fp32"), (True, False, "bf16"),
                                                      (False, True, "bf16"), (True, True, "bf16")])
def test_auto_picks_bf16_only_on_a_cpu_that_computes_it(monkeypatch, avx512_bf16, amx, expected):
    cpu_with_bf16(monkeypatch, avx512_bf16, amx)
    assert P.resolve_precision("auto", CPU) == expected


def test_auto_on_cuda_follows_the_gpus_bf16_support(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert P.resolve_precision("auto", cuda) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert P.resolve_precision("auto", cuda) == "fp32"
    assert P.resolve_precision("fp16", cuda) == "fp16"


def test_explicit_choices_are_kept_and_emulated_bf16_warns(monkeypatch):
    cpu_with_bf16(monkeypatch, False, False)
    assert P.resolve_precision("fp32", CPU) == "fp32"
    with pytest.warns(UserWarning, match="emulated"):
        assert P.resolve_precision("bf16", CPU) == "bf16"
    cpu_with_bf16(monkeypatch, False, True)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert P.resolve_precision("bf16", CPU) == "bf16"


def test_bad_precisions_are_refused_by_name():
    with pytest.raises(ValueError, match="fp16 training needs CUDA"):
        P.resolve_precision("fp16", CPU)
    with pytest.raises(ValueError, match="'auto' or 'fp32' or 'bf16' or 'fp16', got 'half'"):
        P.resolve_precision("half", CPU)


def test_the_autocast_context_matches_the_precision():
    x = torch.randn(4, 4)
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        with P.autocast(name, CPU):
            assert (x @ x).dtype == dtype


def test_the_recipes_default_to_auto():
    from w2v2.train.finetune import RECIPES, finetune_defaults
    from w2v2.train.pretrain import preset_recipe
    assert preset_recipe("tiny").precision == preset_recipe("base").precision == "auto"
    assert finetune_defaults(RECIPES["10min"], None).precision == "auto"
