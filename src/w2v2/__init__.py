"""w2v2: wav2vec 2.0 end to end."""

__version__ = "0.1.0"
