"""The ``causal-lm`` trainer through ``fourfold train``: it learns (held-out loss falls),
records its lineage, is reused when nothing changed, and resumes after a kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fourfold.artifacts import ArtifactStore
from fourfold.cli import app

from .conftest import TINY_TRAINING, copy_knowledge, manifest_text

pytestmark = pytest.mark.slow

runner = CliRunner()


def fourfold(*args: str):
    result = runner.invoke(app, list(args))
    return result


@pytest.fixture
def domain_dir(tmp_path) -> Path:
    copy_knowledge(tmp_path / "knowledge")
    return tmp_path


def test_training_lowers_heldout_loss_and_records_lineage(domain_dir):
    manifest = domain_dir / "clinic.yaml"
    manifest.write_text(manifest_text({"use": "causal-lm", "with": TINY_TRAINING}))

    result = fourfold("train", str(manifest), "--quiet")
    assert result.exit_code == 0, result.output
    assert "clinic-causal-lm" in result.output

    artifact = ArtifactStore().get("clinic-causal-lm")
    info, metrics = artifact.info, artifact.metrics
    assert artifact.kind == "causal-lm"
    assert metrics["after"]["heldout_loss"] < metrics["before"]["heldout_loss"] - 0.5
    assert metrics["after"]["heldout_perplexity"] < metrics["before"]["heldout_perplexity"]
    curve = metrics["loss_curve"]
    assert curve[0][0] == 1 and curve[-1][0] == TINY_TRAINING["steps"]
    assert curve[-1][1] < curve[0][1]
    assert metrics["tokens_per_s"] > 0 and metrics["final_step"] == TINY_TRAINING["steps"]
    # lineage: what made it, from what, when, with which fourfold
    assert info["component"] == {"kind": "trainer", "name": "causal-lm", "plugin": "training"}
    assert info["config"]["width"] == TINY_TRAINING["width"]
    assert info["lineage"]["knowledge"]["files"] >= 10 and len(info["lineage"]["knowledge"]["sha256"]) == 64
    assert info["started_at"] <= info["finished_at"] and info["fourfold_version"]
    # a transformers model with its own tokenizer and a chat template
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(artifact.model_dir)
    model = AutoModelForCausalLM.from_pretrained(artifact.model_dir)
    assert model.config.n_embd == TINY_TRAINING["width"] and tokenizer.chat_template
    assert not (artifact.path / "work").exists(), "checkpoints are removed once the artifact is complete"

    listed = fourfold("artifacts", "--json")
    assert [a["name"] for a in json.loads(listed.output)] == ["clinic-causal-lm"]


def test_unchanged_inputs_reuse_the_artifact_and_changes_retrain(clinic):
    manifest = clinic / "clinic.yaml"
    manifest.write_text(manifest_text({"use": "causal-lm", "with": TINY_TRAINING}))
    made = ArtifactStore().get("clinic-causal-lm").info["finished_at"]

    started = time.perf_counter()
    again = fourfold("train", str(manifest), "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)[0]["reused"] is True
    assert time.perf_counter() - started < 10
    assert ArtifactStore().get("clinic-causal-lm").info["finished_at"] == made

    # Knowledge edits change the inputs: the model is trained again.
    (clinic / "knowledge" / "extra.md").write_text("# Hiccups\n\nHiccups usually stop on their own within minutes.\n" * 20)
    changed = fourfold("train", str(manifest), "--json")
    assert changed.exit_code == 0, changed.output
    assert json.loads(changed.output)[0]["reused"] is False


def test_killed_training_resumes_from_its_last_checkpoint_with_the_same_final_step(domain_dir, fourfold_home):
    steps = 400
    config = {**TINY_TRAINING, "steps": steps, "save_every": 10}
    manifest = domain_dir / "clinic.yaml"
    manifest.write_text(manifest_text({"use": "causal-lm", "with": config}))
    env = {**os.environ, "FOURFOLD_HOME": str(fourfold_home), "FOURFOLD_TORCH_THREADS": "1"}
    command = [sys.executable, "-m", "fourfold", "train", str(manifest), "--quiet"]

    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    staging = fourfold_home / "artifacts" / ".staging"
    deadline = time.monotonic() + 240
    killed_after = None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            states = [s for run in staging.glob("*") for s in (run / "work" / "checkpoints").glob("checkpoint-*/trainer_state.json")]
            done = [int(state.parent.name.split("-")[1]) for state in states]
            if done and max(done) >= 20:
                os.kill(proc.pid, signal.SIGKILL)
                killed_after = max(done)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None and killed_after is None:
            proc.kill()
        proc.wait(timeout=30)
    assert killed_after is not None, f"training ended before it could be killed: {proc.stdout.read().decode()[-2000:]}"
    assert proc.returncode == -signal.SIGKILL

    # Nothing that looks like an artifact was left behind.
    assert ArtifactStore().list() == []
    assert not (fourfold_home / "artifacts" / "clinic-causal-lm").exists()

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    metrics = ArtifactStore().get("clinic-causal-lm").metrics
    assert metrics["final_step"] == steps
    assert metrics["resumed_from_step"] >= killed_after
    assert metrics["steps_this_run"] == steps - metrics["resumed_from_step"]
    # The loss curve spans both processes: it starts at step 1, not at the resume point.
    assert metrics["loss_curve"][0][0] == 1 and metrics["loss_curve"][-1][0] == steps
    assert metrics["after"]["heldout_loss"] < metrics["before"]["heldout_loss"]
