"""wav2vec 2.0 model components (paper section 2) and training objective (section 3)."""

from .ctc import Wav2Vec2ForCTC, build_ctc_model
from .feature_encoder import ConvLayerBlock, FeatureEncoder
from .presets import PRESETS, preset
from .pretraining import Wav2Vec2ForPreTraining, build_pretraining_model
from .quantizer import GumbelVectorQuantizer
from .transformer import ConvPositionalEmbedding, EncoderLayer, FeedForward, SelfAttention, TransformerEncoder
from .wav2vec2 import Wav2Vec2Model, build_model

__all__ = [
    "ConvLayerBlock", "ConvPositionalEmbedding", "EncoderLayer", "FeatureEncoder", "FeedForward",
    "GumbelVectorQuantizer", "PRESETS", "SelfAttention", "TransformerEncoder", "Wav2Vec2ForCTC",
    "Wav2Vec2ForPreTraining", "Wav2Vec2Model", "build_ctc_model", "build_model", "build_pretraining_model",
    "preset",
]
