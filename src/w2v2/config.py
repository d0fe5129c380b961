"""Model configuration: one plain dataclass, saved as JSON next to every checkpoint.

Field names follow fairseq's ``Wav2Vec2Config`` where one exists, so that a user who knows the
reference implementation finds the same knobs; the values of the presets live in
:mod:`w2v2.model.presets` as literals.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ConvSpec = tuple[tuple[int, int, int], ...]  # (channels, kernel, stride) per block

BASE_CONV: ConvSpec = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2


def receptive_field(conv_layers: ConvSpec) -> int:
    """Samples one output frame of the conv stack reads (400 for BASE_CONV, section 2)."""
    r, s = 1, 1
    for _, k, stride in conv_layers:
        r += (k - 1) * s
        s *= stride
    return r


# The choices of the string-valued fields, spelled once: the config checks them, the components
# that implement them (build_feature_encoder, diversity_loss) refuse anything else.
EXTRACTOR_MODES = ("group", "layer")  # GroupNorm on the first conv block (BASE) / LayerNorm on every one
DIVERSITY_FORMS = ("perplexity", "entropy")  # fairseq's and transformers' term / the paper's eq. 4


def one_of(choices: tuple[str, ...]) -> str:
    """``must be 'a' or 'b'``: the message of a refused choice."""
    return "must be " + " or ".join(repr(c) for c in choices)


@dataclass
class W2V2Config:
    # feature encoder (section 2, "Feature encoder")
    conv_layers: ConvSpec = BASE_CONV
    extractor_mode: str = "group"  # "group": GroupNorm on block 0, no bias; "layer": LayerNorm everywhere
    conv_bias: bool = False
    # context network (section 2, "Contextualized representations with Transformers")
    encoder_embed_dim: int = 768
    encoder_layers: int = 12
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    layer_norm_first: bool = False  # pre-LN blocks + final LayerNorm (LV60 / XLS-R layout)
    conv_pos: int = 128
    conv_pos_groups: int = 16
    layer_norm_eps: float = 1e-5
    # regularisation
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    dropout_input: float = 0.1
    dropout_features: float = 0.1
    encoder_layerdrop: float = 0.05
    final_dropout: float = 0.0  # before the CTC head
    # quantization module (section 2, eq. 1)
    latent_vars: int = 320
    latent_groups: int = 2
    latent_dim: int = 0  # codevector width (all groups); 0 = final_dim, as fairseq
    final_dim: int = 256
    latent_temp: tuple[float, float, float] = (2.0, 0.5, 0.999995)  # (max, min, decay per update)
    quantize_input: bool = False  # ablation (table 4): quantized Transformer inputs
    quantize_targets: bool = True  # ablation (table 4): False = continuous targets
    target_units: int = 0  # non-paper: K > 0 = predict k-means units of MFCCs (HuBERT's first iteration)
    target_layer: int = 0  # non-paper, with target_units: L > 0 = units of block L of a frozen copy of --init (2nd)
    # masking (section 3.1, appendix A); mask_prob is fairseq-style (start prob x span length)
    mask_prob: float = 0.65
    mask_length: int = 10
    mask_min_masks: int = 2
    mask_channel_prob: float = 0.0
    mask_channel_length: int = 64
    mask_copies: int = 1  # pre-training: masked copies of each clip over one feature-encoder pass (data2vec 2.0)
    # objective (section 3.2)
    num_negatives: int = 100
    logit_temp: float = 0.1
    diversity_weight: float = 0.1
    feature_pen_weight: float = 10.0
    diversity_form: str = "perplexity"  # "perplexity" (fairseq) or "entropy" (paper eq. 4)
    feature_grad_mult: float = 0.1
    # input
    normalize: bool = False  # per-utterance zero mean / unit variance (LV60 layout)
    # CTC head (section 4.3); 0 = no head
    vocab_size: int = 0
    # provenance, shown by ``w2v2 info``
    origin: str = "w2v2"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject values no model can be built or trained with, naming the field; called on
        construction (keyword arguments, ``--set``, a loaded JSON file) and after in-place edits."""
        problems = [f"{f.name}={getattr(self, f.name)!r}: must be {type(f.default).__name__}"
                    for f in dataclasses.fields(self) if not self._has_default_type(f)]
        if not problems:  # the range checks below assume the types
            problems = [f"{name}={getattr(self, name)!r}: {why}" for name, ok, why in self._checks() if not ok]
        if problems:
            raise ValueError("invalid model config: " + "; ".join(problems))

    def _has_default_type(self, f: dataclasses.Field) -> bool:
        value, default = getattr(self, f.name), f.default
        if isinstance(default, (bool, str)):
            return isinstance(value, type(default))
        if isinstance(default, int):
            return isinstance(value, int) and not isinstance(value, bool)
        if isinstance(default, float):
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(default, tuple):
            return isinstance(value, tuple) and all(isinstance(v, (tuple, int, float)) for v in value)
        return True  # extra (a dict with a default factory)

    def _checks(self) -> list[tuple[str, bool, str]]:
        def prob(name: str) -> tuple[str, bool, str]:
            return name, 0.0 <= getattr(self, name) <= 1.0, "must lie in [0, 1]"

        def positive(name: str) -> tuple[str, bool, str]:
            return name, getattr(self, name) >= 1, "must be at least 1"

        conv_ok = len(self.conv_layers) > 0 and all(
            isinstance(b, tuple) and len(b) == 3 and all(isinstance(v, int) and v >= 1 for v in b)
            for b in self.conv_layers)
        t = self.latent_temp
        temp_ok = len(t) == 3 and all(isinstance(v, (int, float)) for v in t) and 0 < t[1] <= t[0] and 0 < t[2] <= 1
        return [
            ("conv_layers", conv_ok, "needs at least one (channels, kernel, stride) block, every value >= 1"),
            ("extractor_mode", self.extractor_mode in EXTRACTOR_MODES, one_of(EXTRACTOR_MODES)),
            *map(positive, ("encoder_embed_dim", "encoder_layers", "encoder_ffn_embed_dim",
                            "encoder_attention_heads", "conv_pos", "conv_pos_groups", "latent_vars",
                            "latent_groups", "final_dim", "mask_length", "mask_channel_length", "mask_copies",
                            "num_negatives")),
            ("encoder_attention_heads", self.encoder_embed_dim % max(self.encoder_attention_heads, 1) == 0,
             f"must divide encoder_embed_dim ({self.encoder_embed_dim})"),
            ("conv_pos_groups", self.encoder_embed_dim % max(self.conv_pos_groups, 1) == 0,
             f"must divide encoder_embed_dim ({self.encoder_embed_dim})"),
            ("latent_groups", self.codevector_dim % max(self.latent_groups, 1) == 0,
             f"must divide the codevector width ({self.codevector_dim})"),
            ("latent_dim", self.latent_dim >= 0, "must be >= 0 (0: final_dim)"),
            ("latent_temp", temp_ok, "(max, min, decay) needs 0 < min <= max and 0 < decay <= 1"),
            *map(prob, ("dropout", "attention_dropout", "activation_dropout", "dropout_input", "dropout_features",
                        "encoder_layerdrop", "final_dropout", "mask_prob", "mask_channel_prob")),
            ("mask_min_masks", self.mask_min_masks >= 0, "must be >= 0"),
            ("layer_norm_eps", self.layer_norm_eps > 0, "must be > 0"),
            ("logit_temp", self.logit_temp > 0, "must be > 0"),
            ("diversity_weight", self.diversity_weight >= 0, "must be >= 0"),
            ("feature_pen_weight", self.feature_pen_weight >= 0, "must be >= 0"),
            ("diversity_form", self.diversity_form in DIVERSITY_FORMS, one_of(DIVERSITY_FORMS)),
            ("feature_grad_mult", self.feature_grad_mult >= 0, "must be >= 0"),
            ("target_units", self.target_units == 0 or self.target_units >= 2, "must be 0 (the paper's targets) or >= 2"),
            ("target_units", self.target_units == 0 or not self.quantize_targets,
             "unit targets replace the quantized ones: set quantize_targets=False with them"),
            ("target_units", self.target_units == 0 or self.mask_copies == 1, "unit targets need mask_copies=1"),
            ("target_layer", 0 <= self.target_layer <= self.encoder_layers, "must be 0 (MFCC units) or a block, "
             f"1 to encoder_layers ({self.encoder_layers})"),
            ("target_layer", self.target_layer == 0 or self.target_units > 0, "needs unit targets (target_units=K)"),
            ("vocab_size", self.vocab_size >= 0, "must be >= 0 (0: no CTC head)"),
        ]

    @property
    def targets(self) -> str:
        """What pre-training predicts at the masked frames: "codes" (the paper's quantized latents),
        "latents" (continuous, table 4) or "units" (k-means units, ``target_units``, of MFCCs or of
        a frozen model's block ``target_layer``)."""
        if self.target_units > 0:
            return "units"
        return "codes" if self.quantize_targets else "latents"

    @property
    def codevector_dim(self) -> int:
        return self.latent_dim if self.latent_dim > 0 else self.final_dim

    @property
    def frame_stride(self) -> int:
        s = 1
        for _, _, stride in self.conv_layers:
            s *= stride
        return s

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.conv_layers)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> W2V2Config:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        d = dict(d)
        if "conv_layers" in d:
            d["conv_layers"] = tuple(tuple(int(v) for v in layer) for layer in d["conv_layers"])
        if "latent_temp" in d:
            d["latent_temp"] = tuple(float(v) for v in d["latent_temp"])
        return cls(**d)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> W2V2Config:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: cannot read model config: {e}") from e
        try:
            return cls.from_dict(d)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from e
