"""The trainer: exact resume after SIGKILL, data-parallel equivalence, non-finite updates, checkpoints."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from train_utils import cpu_with_bf16, micro_config, write_corpus
from w2v2.train.checkpoint import latest_checkpoint, list_checkpoints, save_checkpoint
from w2v2.train.loop import StepResult, Trainer, TrainingStopped, one_group

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def pretrain_cmd(manifest: Path, cfg_path: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "w2v2.cli", "pretrain", "--train", str(manifest), "--valid", str(manifest),
            "--config", str(cfg_path), "--out", str(out), "--max-updates", "8", "--save-every", "1",
            "--validate-every", "4", "--log-every", "1", "--precision", "fp32", "--num-workers", "0",
            "--max-tokens", "60000", "--min-sample-size", "4000", "--max-sample-size", "16000", "--keep-last", "3",
            "--lr", "1e-3", *extra]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    manifest = write_corpus(d / "audio")
    cfg_path = d / "micro.json"
    micro_config(encoder_layerdrop=0.0).save(cfg_path)
    return manifest, cfg_path


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "last" / "model.safetensors"))


@pytest.mark.slow
def test_sigkill_then_resume_reaches_the_same_parameters(corpus, tmp_path):
    manifest, cfg_path = corpus
    subprocess.run(pretrain_cmd(manifest, cfg_path, tmp_path / "ref"), check=True, env=ENV, capture_output=True)
    proc = subprocess.Popen(pretrain_cmd(manifest, cfg_path, tmp_path / "killed"), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list_checkpoints(tmp_path / "killed")) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = latest_checkpoint(tmp_path / "killed")
    assert state is not None and state["num_updates"] < 8, "the run must be killed mid-training"
    subprocess.run(pretrain_cmd(manifest, cfg_path, tmp_path / "killed", "--resume"), check=True, env=ENV,
                   capture_output=True)
    ref, resumed = final_weights(tmp_path / "ref"), final_weights(tmp_path / "killed")
    assert ref.keys() == resumed.keys()
    for k in ref:
        assert torch.equal(ref[k], resumed[k]), k


@pytest.mark.slow
def test_two_process_ddp_equals_single_process_accumulation(corpus, tmp_path):
    """Two gloo ranks with update_freq 1 == one process with update_freq 2 (same global batches).
    Tolerance 1e-5: the gradients are summed in a different order."""
    manifest, cfg_path = corpus
    single = pretrain_cmd(manifest, cfg_path, tmp_path / "single", "--update-freq", "2")
    subprocess.run(single, check=True, env=ENV, capture_output=True)
    ddp = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29533",
           "-m", "w2v2.cli"] + pretrain_cmd(manifest, cfg_path, tmp_path / "ddp")[3:]
    r = subprocess.run(ddp, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = final_weights(tmp_path / "single"), final_weights(tmp_path / "ddp")
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=0), (k, (a[k] - b[k]).abs().max())
    rows = [line for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines() if '"train"' in line]
    assert len(rows) == 8


def test_checkpoint_write_failure_keeps_previous(tmp_path, monkeypatch):
    run = tmp_path / "run"
    good = {"model": {"w": torch.ones(3)}, "num_updates": 1}
    save_checkpoint(run, good, keep_last=2, is_best=False)

    def full_disk(obj, f, *a, **k):
        Path(f).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.warns(UserWarning, match="disk full"):
        assert save_checkpoint(run, {"model": {"w": torch.zeros(3)}, "num_updates": 2}, 2, False) is None
    monkeypatch.undo()
    assert [n for n, _ in list_checkpoints(run)] == [1]
    assert not list((run / "checkpoints").glob("*.tmp"))
    assert torch.equal(latest_checkpoint(run)["model"]["w"], torch.ones(3))


def test_truncated_newest_checkpoint_falls_back(tmp_path):
    run = tmp_path / "run"
    for u in (1, 2):
        save_checkpoint(run, {"model": {"w": torch.full((3,), float(u))}, "num_updates": u}, 5, False)
    newest = run / "checkpoints" / "checkpoint_2.pt"
    newest.write_bytes(newest.read_bytes()[:40])
    with pytest.warns(UserWarning, match="checkpoint_2.pt"):
        state = latest_checkpoint(run)
    assert state["num_updates"] == 1


class NaNTask:
    """Loss = sum of squares of a parameter; non-finite on the updates listed in ``bad``."""

    metric, bar_keys, crop_to_shortest, normalize, find_unused_parameters = "loss", ("loss",), True, False, False

    def __init__(self, bad):
        self.bad = bad
        self.positions = []  # (num_updates, schedule position) of every on_update call

    def step(self, model, batch, rng, num_updates):
        loss = (model.w ** 2).sum() * batch.waveform.shape[0]
        if num_updates in self.bad:
            loss = loss * float("nan")
        return StepResult(loss, batch.waveform.shape[0], {})

    def validate(self, model, device, autocast):
        return {"loss": float((model.w ** 2).sum())}

    def on_update(self, model, n, at): self.positions.append((n, at))
    def frozen(self, model, n): return []
    def lr_groups(self, model): return one_group(model)
    def export(self, model, out): pass
    def check(self, row, n): return None
    def summarize(self, s): return {}


class Param(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(4))


def make_trainer(tmp_path, corpus, bad, resume=False, **kw):
    from w2v2.data.manifest import read_manifest
    from w2v2.train.config import TrainConfig
    kw.setdefault("precision", "fp32")
    kw.setdefault("max_updates", 6)
    cfg = TrainConfig(lr=0.1, num_workers=0, max_tokens=30000,
                      max_sample_size=16000, min_sample_size=4000, validate_every=100, save_every=100, **kw)
    return Trainer(NaNTask(bad), Param(), read_manifest(corpus[0]), cfg, tmp_path / "run", {}, resume=resume)


def test_non_finite_updates_are_skipped_and_counted(tmp_path, corpus):
    trainer = make_trainer(tmp_path, corpus, bad={2, 3})
    seen = []
    original = trainer.optimizer_step

    def spy(results, acc):
        before = trainer.model.w.detach().clone()
        original(results, acc)
        seen.append((trainer.num_updates - 1, torch.equal(before, trainer.model.w.detach())))

    trainer.optimizer_step = spy
    result = trainer.train()
    assert result["skipped_updates"] == 2
    assert [u for u, unchanged in seen if unchanged] == [2, 3]
    assert torch.isfinite(trainer.model.w).all()


@pytest.mark.parametrize("native", [False, True])
def test_the_trainer_runs_auto_precision_in_what_the_cpu_computes(tmp_path, corpus, monkeypatch, native):
    cpu_with_bf16(monkeypatch, avx512_bf16=False, amx=native)
    trainer = make_trainer(tmp_path, corpus, bad=set(), precision="auto", device="cpu")
    with trainer.autocast():
        product = trainer.model.w[None] @ trainer.model.w[:, None]
    assert product.dtype == (torch.bfloat16 if native else torch.float32)
    assert trainer.train()["precision"] == ("bf16" if native else "fp32")


def test_too_many_non_finite_updates_stop_with_a_message(tmp_path, corpus):
    trainer = make_trainer(tmp_path, corpus, bad=set(range(100)), max_bad_updates=3)
    with pytest.raises(TrainingStopped, match="3 non-finite updates in a row"):
        trainer.train()


def test_resume_refuses_a_checkpoint_of_another_architecture(tmp_path, corpus):
    trainer = make_trainer(tmp_path, corpus, bad=set())
    trainer.model_config_dict = {"encoder_layers": 2}
    trainer.save(is_best=False)
    with pytest.raises(ValueError, match="already holds checkpoints: pass --resume"):
        make_trainer(tmp_path, corpus, bad=set())
    other = make_trainer(tmp_path, corpus, bad=set(), resume=True)
    other.model_config_dict = {"encoder_layers": 4}
    with pytest.raises(ValueError, match=r"another model configuration \(differs in \['encoder_layers'\]\)"):
        other.resume()


class UpdateClock:
    """A clock that moves 6 s per finished update of ``trainer``."""

    def __init__(self, trainer, offset=0.0):
        self.trainer, self.offset = trainer, offset

    def __call__(self):
        return self.offset + 6.0 * self.trainer.num_updates


def rates_used(trainer):
    """The learning rate of every update the trainer makes."""
    seen, original = [], trainer.optimizer_step

    def spy(results, acc):
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        original(results, acc)

    trainer.optimizer_step = spy
    return seen


@pytest.mark.parametrize("pace", ["updates", "time"])
def test_a_time_paced_schedule_has_decayed_when_the_clock_stops_the_run(tmp_path, corpus, pace):
    """100 scheduled updates, 6 s each, a 1-minute limit: the run stops after 11 updates either way.
    Paced by updates the rate is still near its peak then (polynomial decay, 8 % warm-up); paced by
    time the schedule stands at 10x the update count (hand values), past its end at the last one."""
    trainer = make_trainer(tmp_path, corpus, bad=set(), max_minutes=1.0, schedule_pace=pace, max_updates=100)
    trainer.clock = UpdateClock(trainer)
    seen = rates_used(trainer)
    assert trainer.train()["num_updates"] == 11
    if pace == "updates":
        expect = [0.1 * (u + 1) / 8 for u in range(8)] + [0.1 * (100 - u) / 92 for u in (8, 9, 10)]
    else:
        expect = [0.1 * 1 / 8] + [0.1 * (100 - 10 * u) / 92 for u in range(1, 11)]
    assert seen == pytest.approx(expect)
    # the task learns the position each update ran at (fine-tuning's blank warning waits for the
    # end of the warm-up by it)
    step = 1 if pace == "updates" else 10
    assert trainer.task.positions == [(0, 0.0)] + [(u + 1, float(step * u)) for u in range(11)]


def test_the_training_clock_counts_the_runs_a_resume_continues(tmp_path, corpus):
    """4 updates (24 s) then a resume with a 1-minute limit: 7 more updates, not 11, and the
    time-paced schedule continues where the first run's clock left it."""
    first = make_trainer(tmp_path, corpus, bad=set(), max_minutes=1.0, schedule_pace="time", max_updates=100)
    stop = first.optimizer_step

    def stop_after_four(results, acc):  # as a crash would, after the checkpoint of update 4
        stop(results, acc)
        if first.num_updates == 4:
            first.save(is_best=False)
            raise KeyboardInterrupt
    first.optimizer_step = stop_after_four
    first.clock = UpdateClock(first)
    with pytest.raises(KeyboardInterrupt):
        first.train()
    again = make_trainer(tmp_path, corpus, bad=set(), resume=True, max_minutes=1.0, schedule_pace="time",
                         max_updates=100)
    again.clock = UpdateClock(again, offset=1000.0)  # another process: its clock starts elsewhere
    seen = rates_used(again)
    assert again.train()["num_updates"] == 11
    assert seen == pytest.approx([0.1 * (100 - 10 * u) / 92 for u in range(4, 11)])


def test_an_unknown_schedule_pace_is_refused(tmp_path, corpus):
    with pytest.raises(ValueError, match="schedule_pace must be 'updates' or 'time', got 'minutes'"):
        make_trainer(tmp_path, corpus, bad=set(), schedule_pace="minutes")
