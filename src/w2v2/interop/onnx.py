"""``w2v2 export --to onnx`` and the ONNX Runtime acoustic model of ``w2v2 transcribe --backend onnx``.

The graph: ``waveform`` (N, L) float32, zero-padded, and ``lengths`` (N,) int64 valid samples ->
``logits`` (N, T, V) float32 and ``frame_lengths`` (N,) int64 valid frames, with dynamic N and L
(L at least the receptive field). Frames past an utterance's valid ones are meaningless. The
waveform is what ``inference.model_input`` makes of the audio: normalised per utterance when the
config says ``normalize`` (LV60 layout), which is done outside the graph.

The file is self-contained: its metadata holds the model's config (``w2v2.config``, the JSON of
config.json) and vocabulary (``w2v2.vocab``, the JSON of vocab.json, with ``w2v2.units``), so that
decoding needs no model directory. Weights are stored inside the file (one file, written
atomically), which limits exports to protobuf's 2 GB.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..config import W2V2Config
from ..data.text import Vocabulary
from ..model.ctc import CTCOutput
from .model_dir import atomic_write, load_ctc

OPSET = 18
MAX_BYTES = 2 * 10**9  # protobuf's limit on one message, less headroom for the graph
CONFIG_KEY, VOCAB_KEY, UNITS_KEY = "w2v2.config", "w2v2.vocab", "w2v2.units"
INPUTS, OUTPUTS = ["waveform", "lengths"], ["logits", "frame_lengths"]


class CTCGraph(nn.Module):
    """The exported function: a CTC model's forward with plain tensor outputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, waveform: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        out = self.model(waveform, lengths)
        return out.logits, out.lengths


def example_inputs(cfg: W2V2Config) -> tuple[Tensor, Tensor]:
    """A padded batch of two: the traced graph must not specialise to a batch of one or to no padding."""
    long, short = 4 * cfg.receptive_field + 3 * cfg.frame_stride, 2 * cfg.receptive_field + 17
    waveform = torch.randn(2, long, generator=torch.Generator().manual_seed(0))
    waveform[1, short:] = 0.0
    return waveform, torch.tensor([long, short])


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Without torch.onnx's warnings and log lines (optional torchvision ops, deprecations): the
    export either succeeds or raises."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(model: nn.Module, cfg: W2V2Config, vocab: Vocabulary, out: str | Path) -> Path:
    """Write ``model`` (a Wav2Vec2ForCTC) to ``out`` as an ONNX graph with its config and vocabulary."""
    out = Path(out)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    if size > MAX_BYTES:
        raise ValueError(f"{out}: the model's {size / 1e9:.1f} GB of weights exceed what one ONNX file holds "
                         f"({MAX_BYTES / 1e9:.0f} GB)")
    batch = torch.export.Dim("batch")
    samples = torch.export.Dim("samples", min=cfg.receptive_field)
    graph = CTCGraph(model).eval()
    with torch.no_grad(), quiet_exporter():
        program = torch.onnx.export(graph, example_inputs(cfg), input_names=INPUTS, output_names=OUTPUTS,
                                    dynamic_shapes={"waveform": {0: batch, 1: samples}, "lengths": {0: batch}},
                                    opset_version=OPSET, dynamo=True, external_data=False, verbose=False)
    program.model.metadata_props.update({
        CONFIG_KEY: json.dumps(cfg.to_dict()), VOCAB_KEY: json.dumps(vocab.to_dict(), ensure_ascii=False),
        UNITS_KEY: vocab.units})
    atomic_write(out, lambda p: program.save(str(p), external_data=False))
    return out


def export_model_dir(model_dir: str | Path, out: str | Path) -> Path:
    """``w2v2 export --to onnx``: a fine-tuned CTC model directory -> ``out``."""
    model, cfg, vocab = load_ctc(model_dir)
    return export_onnx(model, cfg, vocab, out)


def cached_export(model_dir: str | Path) -> Path:
    """``MODEL_DIR/model.onnx``, exported first when missing or older than the model's weights or config."""
    model_dir = Path(model_dir)
    path = model_dir / "model.onnx"
    sources = [model_dir / "model.safetensors", model_dir / "config.json", model_dir / "vocab.json"]
    newest = max((p.stat().st_mtime for p in sources if p.exists()), default=0.0)
    if not path.is_file() or path.stat().st_mtime < newest:
        export_model_dir(model_dir, path)
    return path


class OnnxAcousticModel:
    """An exported CTC graph on ONNX Runtime (CPU), called as ``Wav2Vec2ForCTC`` is in inference:
    ``model(waveform, lengths).logits``. ``threads``: intra-op threads (default: torch's)."""

    device = torch.device("cpu")

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ValueError(f"{path}: not a readable ONNX model: {e}") from e
        meta = self.session.get_modelmeta().custom_metadata_map
        if CONFIG_KEY not in meta or VOCAB_KEY not in meta:
            raise ValueError(f"{path}: no w2v2 config and vocabulary in its metadata (export it with "
                             "`w2v2 export --to onnx`)")
        self.path = Path(path)
        self.cfg = W2V2Config.from_dict(json.loads(meta[CONFIG_KEY]))
        self.vocab = Vocabulary.from_dict(json.loads(meta[VOCAB_KEY]), units=meta.get(UNITS_KEY, "char"))

    def __call__(self, waveform: Tensor, lengths: Tensor) -> CTCOutput:
        feeds = {"waveform": np.ascontiguousarray(waveform.cpu().numpy(), dtype=np.float32),
                 "lengths": lengths.cpu().numpy().astype(np.int64)}
        logits, frames = self.session.run(OUTPUTS, feeds)
        return CTCOutput(torch.from_numpy(logits), torch.from_numpy(frames))
