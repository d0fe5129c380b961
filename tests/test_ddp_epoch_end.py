"""Data-parallel gradient accumulation across an epoch's end, and ranks that agree on when to stop.

Two gloo ranks with ``update_freq`` F equal one process with ``update_freq`` 2F (the same global
batches) also when the epoch ends with fewer than F micro-batches per rank: the short update must
average the ranks' gradients as the full ones do. The corpus gives 10 batches (5 per rank, odd),
so that both F = 2 (2 + 2 + 1) and F = 3 (3 + 2) end each epoch with a short update, and the runs
cross into the second epoch. Every multi-process run has a timeout: a rank waiting in a collective
its peers never enter fails the test instead of hanging it.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from train_utils import micro_config, write_corpus
from w2v2.data.dataset import make_batches
from w2v2.data.manifest import read_manifest

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
TIMEOUT = 300  # seconds for one run; a hang fails here
WORKER = Path(__file__).with_name("ddp_worker.py")
MAX_TOKENS, MAX_SAMPLES = 32000, 16000  # clips capped at 16000 samples: two per batch


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    manifest = write_corpus(d / "audio", n=20)
    cfg_path = d / "micro.json"
    micro_config(encoder_layerdrop=0.0).save(cfg_path)
    sizes = [e.samples for e in read_manifest(manifest)]
    assert len(make_batches(sizes, MAX_TOKENS, MAX_SAMPLES, 1, 0)) == 10  # 5 batches per rank
    return manifest, cfg_path


def pretrain_args(manifest: Path, cfg_path: Path, out: Path, updates: int, update_freq: int) -> list[str]:
    return ["pretrain", "--train", str(manifest), "--valid", str(manifest), "--config", str(cfg_path),
            "--out", str(out), "--max-updates", str(updates), "--update-freq", str(update_freq),
            "--save-every", "100", "--validate-every", "100", "--log-every", "1", "--precision", "fp32",
            "--num-workers", "0", "--max-tokens", str(MAX_TOKENS), "--min-sample-size", "4000",
            "--max-sample-size", str(MAX_SAMPLES), "--lr", "1e-3"]


def torchrun(port: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port),
            *args]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"no result after {TIMEOUT} s (a rank waits in a collective): {str(e.stderr)[-2000:]}")


@pytest.mark.slow
@pytest.mark.parametrize("update_freq,updates,port", [(2, 4, 29541), (3, 3, 29542)])
def test_short_update_at_an_epoch_end_averages_over_ranks(corpus, tmp_path, update_freq, updates, port):
    """Tolerance 1e-5 as the data-parallel test of test_training.py: the gradients are summed in
    another order. 4 updates at F = 2 and 3 at F = 3 take one and a half epochs."""
    manifest, cfg_path = corpus
    single = run([sys.executable, "-m", "w2v2.cli"]
                 + pretrain_args(manifest, cfg_path, tmp_path / "single", updates, 2 * update_freq))
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = run(torchrun(port, "-m", "w2v2.cli") + pretrain_args(manifest, cfg_path, tmp_path / "ddp", updates,
                                                               update_freq))
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a = load_file(str(tmp_path / "single" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "ddp" / "last" / "model.safetensors"))
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=0), (k, (a[k] - b[k]).abs().max())
    rows = [line for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines() if '"train"' in line]
    assert len(rows) == updates


@pytest.mark.slow
def test_ranks_agree_on_the_end_of_every_epoch(corpus, tmp_path):
    """Both ranks see the same epoch boundaries, positions and short updates (one line per rank
    and update from the worker), and end their run together."""
    manifest, _ = corpus
    r = run(torchrun(29543, str(WORKER), "boundaries", str(manifest), str(tmp_path / "run")))
    assert r.returncode == 0, r.stderr[-3000:]
    per_rank = [(tmp_path / f"boundaries.{rank}.txt").read_text().splitlines() for rank in (0, 1)]
    assert per_rank[0] == per_rank[1]
    # update_freq 2 over 5 batches per rank: (epoch, position after the update, micro-batches)
    assert per_rank[0] == ["0 2 2", "0 4 2", "1 0 1", "1 2 2", "1 4 2", "2 0 1", "2 2 2"]


@pytest.mark.slow
def test_ranks_with_different_data_are_refused_not_hung(corpus, tmp_path):
    """Rank 1 reads one clip fewer: its epochs would end at another update; both ranks stop at
    once with a message."""
    manifest, _ = corpus
    r = run(torchrun(29544, str(WORKER), "uneven", str(manifest), str(tmp_path / "run")))
    assert r.returncode != 0
    assert "the ranks do not read the same data" in r.stderr


@pytest.mark.slow
def test_ranks_stop_together_when_one_clock_runs_out(corpus, tmp_path):
    """--max-minutes measured on rank 1's clock only (rank 0's never runs out): both ranks stop
    after the same update, validate and save, instead of rank 0 waiting for gradients."""
    manifest, _ = corpus
    r = run(torchrun(29545, str(WORKER), "clock", str(manifest), str(tmp_path / "run")))
    assert r.returncode == 0, r.stderr[-3000:]
    done = [(tmp_path / f"clock.{rank}.txt").read_text().split() for rank in (0, 1)]
    assert done[0] == done[1] and 0 < int(done[0][0]) < 50


def test_a_position_at_the_end_of_an_epoch_resumes_in_the_next(corpus, tmp_path):
    """Checkpoints of the earlier loop could hold position == the epoch's batch count; such a
    position continues with the next epoch's first batch (epochs now end at position 0)."""
    from ddp_worker import MeanTask
    from w2v2.train.config import TrainConfig
    from w2v2.train.loop import Trainer

    cfg = TrainConfig(max_tokens=MAX_TOKENS, max_sample_size=MAX_SAMPLES, min_sample_size=4000, num_workers=0,
                      precision="fp32", device="cpu")
    trainer = Trainer(MeanTask(), torch.nn.Linear(1, 1), read_manifest(corpus[0]), cfg, tmp_path / "run", {})
    trainer.epoch, trainer.position = 2, 10
    first = next(trainer.micro_batches())
    assert (first.epoch, first.index, first.seed_index, first.ends_epoch) == (3, 0, 0, False)
    trainer.position = 9
    last = next(trainer.micro_batches())
    assert (last.epoch, last.index, last.ends_epoch) == (2, 9, True)
