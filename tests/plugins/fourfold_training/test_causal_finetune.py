"""``lora`` and ``full`` through ``fourfold fine-tune``: held-out perplexity on domain text
falls, artifacts chain (LoRA on the model ``causal-lm`` trained), and bad data is
reported with its file and line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fourfold.artifacts import ArtifactStore
from fourfold.cli import app

from .conftest import TINY_TRAINING, instruction_pairs, manifest_text, write_jsonl

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.slow
def test_lora_on_the_trained_model_lowers_heldout_perplexity(clinic):
    """Train → LoRA: the adapter is trained on pairs derived from the knowledge base and
    merged, so the artifact loads as a plain transformers model."""
    lora = {
        "use": "lora",
        "artifact": "clinic-lora",
        "with": {"base": "artifact:clinic-causal-lm", "steps": 30, "learning_rate": 0.01, "batch_size": 8, "max_length": 96},
    }
    manifest = clinic / "clinic.yaml"
    manifest.write_text(manifest_text({"use": "causal-lm", "with": TINY_TRAINING}, [lora]))

    result = invoke("fine-tune", str(manifest), "--json")
    assert result.exit_code == 0, result.output
    runs = {r["name"]: r for r in json.loads(result.output)}
    assert runs["clinic-causal-lm"]["reused"] is True  # training ran first, unchanged
    assert runs["clinic-lora"]["reused"] is False

    artifact = ArtifactStore().get("clinic-lora")
    metrics = artifact.metrics
    assert artifact.kind == "causal-lm" and metrics["method"] == "lora"
    assert metrics["after"]["heldout_perplexity"] < metrics["before"]["heldout_perplexity"]
    assert metrics["train_examples"] > 20 and metrics["heldout_examples"] >= 2
    assert artifact.info["base"] == "artifact:clinic-causal-lm"
    trained = ArtifactStore().get("clinic-causal-lm")
    assert artifact.info["lineage"]["base"]["fingerprint"] == trained.fingerprint
    assert (artifact.model_dir / "adapter" / "adapter_config.json").is_file()

    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(artifact.model_dir)
    assert not any("lora" in name for name, _ in merged.named_parameters())

    # Retraining the base model invalidates the fine-tune built on it.
    again = invoke("fine-tune", str(manifest), "--json", "--only", "clinic-lora")
    assert {r["name"]: r["reused"] for r in json.loads(again.output)} == {"clinic-causal-lm": True, "clinic-lora": True}


@pytest.mark.slow
def test_full_fine_tune_on_instruction_pairs_lowers_heldout_perplexity(clinic):
    write_jsonl(clinic / "finetune.jsonl", instruction_pairs(48))
    full = {
        "use": "full",
        "with": {"base": "artifact:clinic-causal-lm", "data": "finetune.jsonl", "steps": 25, "learning_rate": 0.003, "batch_size": 8},
    }
    manifest = clinic / "clinic.yaml"
    manifest.write_text(manifest_text(None, [full]))

    result = invoke("fine-tune", str(manifest), "--quiet")
    assert result.exit_code == 0, result.output
    artifact = ArtifactStore().get("clinic-full")
    metrics = artifact.metrics
    assert metrics["method"] == "full"
    assert metrics["after"]["heldout_perplexity"] < metrics["before"]["heldout_perplexity"]
    data = artifact.info["lineage"]["inputs"]["data"]
    assert data["file"] == "finetune.jsonl" and len(data["sha256"]) == 64


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"instruction": "What is a fever?", "response": ', "invalid JSON"),
        ('{"instruction": "What is a fever?"}', "missing field 'response'"),
        ('{"instruction": "What is a fever?", "response": "   "}', "field 'response' is empty"),
        ('["What is a fever?", "A high temperature."]', "expected a JSON object"),
    ],
)
def test_bad_data_is_reported_with_file_and_line(clinic, line, expected):
    rows = [json.dumps(r) for r in instruction_pairs(2)]
    (clinic / "pairs.jsonl").write_text(f"{rows[0]}\n\n{rows[1]}\n{line}\n", encoding="utf-8")
    manifest = clinic / "clinic.yaml"
    manifest.write_text(
        manifest_text(None, [{"use": "lora", "with": {"base": "artifact:clinic-causal-lm", "data": "pairs.jsonl", "steps": 2}}])
    )
    result = invoke("fine-tune", str(manifest), "--quiet")
    assert result.exit_code == 1
    assert f"{clinic / 'pairs.jsonl'}:4: {expected}" in " ".join(result.output.split())
    assert ArtifactStore().find("clinic-lora") is None


def test_missing_data_file_and_unknown_artifact_are_named(clinic):
    manifest = clinic / "clinic.yaml"
    manifest.write_text(manifest_text(None, [{"use": "lora", "with": {"base": "artifact:clinic-causal-lm", "data": "nope.jsonl"}}]))
    result = invoke("fine-tune", str(manifest), "--quiet")
    assert result.exit_code == 1
    assert "nope.jsonl does not exist" in " ".join(result.output.split())

    manifest.write_text(manifest_text(None, [{"use": "lora", "with": {"base": "artifact:no-such-model"}}]))
    result = invoke("fine-tune", str(manifest), "--quiet")
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "no artifact named 'no-such-model'" in text and "clinic-causal-lm" in text


def test_two_stages_writing_one_artifact_is_an_error(clinic):
    manifest = clinic / "clinic.yaml"
    blocks = [{"use": "lora", "with": {"steps": 1}}, {"use": "lora", "with": {"steps": 2}}]
    manifest.write_text(manifest_text(None, blocks))
    result = invoke("fine-tune", str(manifest), "--quiet")
    assert result.exit_code == 1
    assert "would both write artifact 'clinic-lora'" in " ".join(result.output.split())


@pytest.mark.slow
def test_lora_on_smollm2_lowers_heldout_perplexity(clinic, fourfold_home):
    """A handful of LoRA steps on SmolLM2-135M-Instruct, short sequences."""
    from ...helpers.models import link_smollm2

    link_smollm2(fourfold_home)  # the checkpoint converted once for the whole test run
    write_jsonl(clinic / "finetune.jsonl", instruction_pairs(16))
    lora = {
        "use": "lora",
        "artifact": "clinic-smollm2-lora",
        "with": {"base": "smollm2", "data": "finetune.jsonl", "steps": 4, "batch_size": 2, "max_length": 48,
                 "learning_rate": 0.003, "rank": 4, "eval_fraction": 0.2, "max_eval_examples": 4, "warmup_steps": 0},
    }
    manifest = clinic / "clinic.yaml"
    manifest.write_text(manifest_text(None, [lora]))
    result = invoke("fine-tune", str(manifest), "--quiet")
    assert result.exit_code == 0, result.output
    artifact = ArtifactStore().get("clinic-smollm2-lora")
    metrics = artifact.metrics
    assert metrics["after"]["heldout_perplexity"] < metrics["before"]["heldout_perplexity"]
    assert metrics["base_folder"] == str(fourfold_home / "models" / "smollm2")
    assert artifact.info["lineage"]["base"]["ref"] == "smollm2"
