"""The fairseq importer's parts that need no fairseq: the safe reader, the list-string parser,
the dictionary and the configuration mapping (fairseq itself is the oracle of test_fairseq.py)."""

import argparse
import collections
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from w2v2.config import BASE_CONV
from w2v2.interop.fairseq import (config_from_fairseq, default_vocab, import_fairseq, parse_literal, read_dictionary,
                                  resolve_interpolations)
from w2v2.interop.unpickler import load_checkpoint, plain


class RunsCommand:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return self.fn, (self.arg,)


@pytest.mark.parametrize("fn", [os.system, eval])
def test_malicious_pickle_is_refused_without_running(tmp_path, fn):
    marker = tmp_path / "ran"
    payload = f"touch {marker}" if fn is os.system else f"open({str(marker)!r}, 'w')"
    torch.save({"model": {}, "cfg": RunsCommand(fn, payload)}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match=rf"evil\.pt: refusing to load \w+\.{fn.__name__}"):
        import_fairseq(tmp_path / "evil.pt")
    assert not marker.exists()


class Opaque:
    pass


def test_other_globals_are_refused(tmp_path):
    torch.save({"model": {}, "args": RunsCommand(print, "x")}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        load_checkpoint(tmp_path / "x.pt")
    torch.save({"model": {}, "extra": Opaque()}, tmp_path / "y.pt")
    with pytest.raises(ValueError, match="refusing to load test_fairseq_import.Opaque"):
        load_checkpoint(tmp_path / "y.pt")


def test_truncated_missing_and_foreign_files(tmp_path):
    torch.save({"model": {"w": torch.zeros(1000)}}, tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.pt").write_text("not a checkpoint\n")
    for name in ("cut.pt", "notes.pt"):
        with pytest.raises(ValueError, match=rf"{name}: not a readable PyTorch checkpoint"):
            import_fairseq(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        import_fairseq(tmp_path / "missing.pt")
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: no 'model' state dict"):
        import_fairseq(tmp_path / "other.pt")


@pytest.mark.parametrize("legacy", [False, True])
def test_zip_and_legacy_formats_read_back(tmp_path, legacy):
    sd = collections.OrderedDict(a=torch.randn(3, 2), b=torch.arange(4))
    args = argparse.Namespace(arch="wav2vec2", loss_weights="[0.1, 10]", latent_temp=(2.0, 0.5, 0.9), flag=True)
    torch.save({"args": args, "model": sd, "extra": [1, 2.5, b"x", None]}, tmp_path / "c.pt",
               _use_new_zipfile_serialization=not legacy)
    back = plain(load_checkpoint(tmp_path / "c.pt"))
    assert back["args"] == vars(args) and back["extra"] == [1, 2.5, b"x", None]
    assert all(torch.equal(back["model"][k], sd[k]) for k in sd)


def test_omegaconf_config_becomes_plain_data(tmp_path):
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create({"model": {"_name": "wav2vec2", "latent_temp": [2.0, 0.5, 0.999995], "x": None,
                                                "n": "${task.normalize}", "mode": omegaconf.SCMode.DICT},
                                      "task": {"normalize": True, "nested": [[1, 2], {"a": "b"}]}})
    omegaconf.OmegaConf.set_struct(cfg, True)
    torch.save({"cfg": cfg, "model": {}}, tmp_path / "c.pt")
    back = plain(load_checkpoint(tmp_path / "c.pt"))["cfg"]
    want = omegaconf.OmegaConf.to_container(cfg, resolve=False)
    want["model"]["mode"] = omegaconf.SCMode.DICT.value  # an enum becomes its value
    assert back == want
    assert resolve_interpolations(back, back)["model"]["n"] is True


triples = st.tuples(st.integers(1, 1024), st.integers(1, 16), st.integers(1, 8))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(triples, st.integers(1, 6)), min_size=1, max_size=5))
def test_parse_literal_agrees_with_python(blocks):
    text = " + ".join(f"[{t}] * {n}" if n > 1 else f"[{t}]" for t, n in blocks)
    assert parse_literal(text) == eval(text)  # the generated string is the oracle's input only


def test_parse_literal_fairseq_strings_and_refusals():
    base = "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] + [(512,2,2)]"
    assert tuple(parse_literal(base)) == BASE_CONV
    assert parse_literal("(2,0.5,0.999995)") == (2, 0.5, 0.999995)
    assert parse_literal("[0.1, -1e-3]") == [0.1, -0.001]
    for bad in ("__import__('os').system('true')", "[1] * 10**9", "[(1, 2, 3)] * 100000", "[1] + (2,)", "[1"):
        with pytest.raises(ValueError, match="cannot parse"):
            parse_literal(bad)


def test_dictionary_names_blank_pad_and_checks_size(tmp_path):
    d = tmp_path / "dict.ltr.txt"
    d.write_text("| 100\nE 50\nT 40\n' 3 #fairseq:overwrite\n")
    assert read_dictionary(d, 8) == {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "E": 5, "T": 6, "'": 7}
    with pytest.raises(ValueError, match=r"dict.ltr.txt: 4 special symbols \+ 4 lines = 8 tokens, but the CTC head has 9"):
        read_dictionary(d, 9)
    d.write_text("| 100\nE\n")
    with pytest.raises(ValueError, match=r"dict.ltr.txt:2: expected 'SYMBOL COUNT'"):
        read_dictionary(d, 6)
    d.write_text("| 100\n<unk> 5\n")
    with pytest.raises(ValueError, match=r"dict.ltr.txt:2: duplicate symbol"):
        read_dictionary(d, 6)


def test_default_dictionary_only_for_the_librispeech_head():
    with pytest.warns(UserWarning, match="LibriSpeech"):
        vocab = default_vocab(32, "ft.pt")
    assert [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])][:8] == ["<pad>", "<s>", "</s>", "<unk>",
                                                                             "|", "E", "T", "A"]
    with pytest.raises(ValueError, match="ft.pt: the CTC head has 40 outputs; give .* --dict"):
        default_vocab(40, "ft.pt")


def test_config_mapping_defaults_overrides_and_refusals():
    lv60 = {"model": {"extractor_mode": "layer_norm", "final_dim": 0, "encoder_embed_dim": 64,
                      "encoder_attention_heads": 4},
            "task": {"normalize": True}, "criterion": None}
    cfg = config_from_fairseq(lv60)
    assert (cfg.extractor_mode, cfg.final_dim, cfg.normalize) == ("layer", 64, True)  # final_dim 0 = model width
    assert (cfg.diversity_weight, cfg.feature_pen_weight) == (0.1, 0.0)  # no criterion: the released LV60 weights
    flat = {"arch": "wav2vec2", "criterion": "wav2vec", "loss_weights": "[0.5]", "normalize": False}
    assert config_from_fairseq(flat).feature_pen_weight == 0.5  # one weight applies to every extra loss
    flat["loss_weights"] = None
    assert (config_from_fairseq(flat).diversity_weight, config_from_fairseq(flat).feature_pen_weight) == (0, 0)
    ft = {"model": {"apply_mask": False, "mask_prob": 0.7, "layerdrop": 0.2, "dropout": 0.05},
          "task": {"normalize": True}}
    cfg = config_from_fairseq(lv60, ft)
    assert (cfg.mask_prob, cfg.encoder_layerdrop, cfg.dropout, cfg.feature_grad_mult) == (0.0, 0.2, 0.05, 0.0)
    for key, value in (("layer_type", "conformer"), ("pos_conv_depth", 5), ("activation_fn", "relu"),
                       ("quantize_input", True)):
        with pytest.raises(ValueError, match=f"m.pt: fairseq {key}="):
            config_from_fairseq({"model": {key: value}, "task": {}}, source="m.pt")
    with pytest.warns(UserWarning, match="negatives_from_everywhere=True"):
        config_from_fairseq({"model": {"negatives_from_everywhere": True}, "task": {}})


def test_checkpoint_level_refusals(tmp_path):
    def save(name, ckpt):
        torch.save(ckpt, tmp_path / name)
        return tmp_path / name

    hubert = save("hubert.pt", {"model": {}, "cfg": {"model": {"_name": "hubert"}, "task": {}}})
    with pytest.raises(ValueError, match="'hubert' is not wav2vec 2.0"):
        import_fairseq(hubert)
    no_args = save("ft.pt", {"model": {"w2v_encoder.proj.weight": torch.zeros(2, 2)},
                             "cfg": {"model": {"_name": "wav2vec_ctc"}, "task": {}}})
    with pytest.raises(ValueError, match="ft.pt: fine-tuned checkpoint without w2v_args"):
        import_fairseq(no_args)
    no_cfg = save("bare.pt", {"model": {}})
    with pytest.raises(ValueError, match="bare.pt: neither 'cfg' nor 'args'"):
        import_fairseq(no_cfg)
