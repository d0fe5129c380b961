"""``w2v2 import --from hf ORG/NAME``: a hub id is resolved through huggingface_hub's cache.

Offline and without mocks: a Hugging Face cache is laid out in tmp_path as huggingface_hub writes
it (``models--ORG--NAME/refs/main`` naming a commit, the files under ``snapshots/COMMIT/``), and the
command runs in a fresh process with ``HF_HUB_CACHE`` / ``HF_HOME`` pointing there and
``HF_HUB_OFFLINE=1`` (huggingface_hub reads them when imported).
"""

import os
import subprocess
import sys

import pytest
import torch

from hf_oracle import build
from w2v2.interop.hf import import_hf
from w2v2.interop.model_dir import load_model_dir

pytest.importorskip("huggingface_hub")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_env(tmp_path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HOME": str(tmp_path / "hf_home"),
            "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}


def cache_model(tmp_path, repo_id: str, safetensors: bool):
    """A transformers model saved into the cache's snapshot of ``repo_id`` at COMMIT."""
    repo = tmp_path / "hub" / ("models--" + repo_id.replace("/", "--"))
    hf = build("Wav2Vec2ForPreTraining", "group")
    hf.save_pretrained(repo / "snapshots" / COMMIT, safe_serialization=safetensors)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return repo / "snapshots" / COMMIT


def w2v2_import(tmp_path, src: str, out) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "w2v2.cli", "import", "--from", "hf", src, str(out)],
                          env=hub_env(tmp_path), capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("safetensors", [True, False], ids=["model.safetensors", "pytorch_model.bin"])
def test_a_cached_hub_id_imports_offline(tmp_path, safetensors):
    snapshot = cache_model(tmp_path, "acme/tiny-w2v2", safetensors)
    r = w2v2_import(tmp_path, "acme/tiny-w2v2", tmp_path / "out")
    assert r.returncode == 0, r.stderr[-3000:]
    model, cfg, _ = load_model_dir(tmp_path / "out")
    ref_cfg, ref_sd, _ = import_hf(snapshot)  # the same files read as a local folder
    assert cfg == ref_cfg and type(model).__name__ == "Wav2Vec2ForPreTraining"
    ours = model.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in ref_sd.items())


def test_an_uncached_hub_id_offline_says_so(tmp_path):
    cache_model(tmp_path, "acme/tiny-w2v2", True)
    r = w2v2_import(tmp_path, "acme/other-model", tmp_path / "out")
    assert r.returncode == 2
    assert "acme/other-model: not a local folder, and not in the Hugging Face cache" in r.stderr
    assert "HF_HUB_OFFLINE=1" in r.stderr and str(tmp_path / "hub") in r.stderr
    assert not (tmp_path / "out").exists()


def test_a_local_folder_is_not_looked_up(tmp_path):
    """A local save_pretrained folder wins over the hub, even with a name that could be a hub id."""
    snapshot = cache_model(tmp_path, "acme/tiny-w2v2", True)
    local = tmp_path / "acme" / "tiny-w2v2"
    local.parent.mkdir()
    snapshot.rename(local)  # the cache no longer holds it
    r = subprocess.run([sys.executable, "-m", "w2v2.cli", "import", "--from", "hf", "acme/tiny-w2v2",
                        str(tmp_path / "out")], env=hub_env(tmp_path), capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]


def test_a_file_is_refused(tmp_path, capsys):
    from w2v2.cli import main

    (tmp_path / "model.pt").write_bytes(b"x")
    assert main(["import", "--from", "hf", str(tmp_path / "model.pt"), str(tmp_path / "out")]) == 2
    assert "a file; --from hf reads a save_pretrained folder or a hub id" in capsys.readouterr().err
