"""Trained and fine-tuned artifacts are generators like any other: a manifest names them
as ``artifact:NAME`` and the HTTP API answers with them."""

from __future__ import annotations

import shutil

import pytest

from fourfold.artifacts import ArtifactStore

from .conftest import MEDICAL_KNOWLEDGE, TINY_TRAINING, manifest_text

pytestmark = pytest.mark.slow

FEW_DOCUMENTS = ["first-aid/nosebleeds.txt", "first-aid/sunburn.md", "conditions/anxiety.md"]


def serving_manifest(folder, domain: str, generator: str, stages: list[dict]) -> object:
    knowledge = folder / domain / "knowledge"
    for rel in FEW_DOCUMENTS:
        (knowledge / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(MEDICAL_KNOWLEDGE / rel, knowledge / rel)
    path = folder / domain / f"{domain}.yaml"
    text = manifest_text(None, stages, extra=f"""
        retrieval: {{use: sparse, with: {{top_k: 2}}}}
        prompt: {{use: grounded-citations}}
        generation: {{use: transformers, with: {{model: '{generator}', max_tokens: 12}}}}
    """).replace("domain: clinic", f"domain: {domain}")
    path.write_text(text, encoding="utf-8")
    return path


def test_fine_tuned_and_trained_artifacts_answer_through_the_api(clinic, fourfold_home):
    from fastapi.testclient import TestClient

    from fourfold.api import ApiOptions, create_app
    from fourfold.api.assistants import Assistants
    from fourfold.domain import Domain
    from fourfold.index import refresh
    from fourfold.training import run_fine_tuning

    lora = {"use": "lora", "artifact": "clinic-lora", "with": {"base": "artifact:clinic-causal-lm", "steps": 4, "batch_size": 8}}
    tuned = serving_manifest(clinic, "clinic", "artifact:clinic-lora", [lora])
    scratch = serving_manifest(clinic, "scratch", "artifact:clinic-causal-lm", [])
    [run] = run_fine_tuning(Domain.from_file(tuned))
    assert run.artifact.name == "clinic-lora" and not run.reused
    assert {a.name for a in ArtifactStore().list()} == {"clinic-causal-lm", "clinic-lora"}

    assistants = Assistants.from_manifests([tuned, scratch])
    for name in ("clinic", "scratch"):
        refresh(assistants.domains[name])
    app = create_app(assistants=assistants, options=ApiOptions(warm_up=False))
    with TestClient(app) as client:
        for name in ("clinic", "scratch"):
            headers = {"Authorization": f"Bearer {assistants.tokens[name].tokens[0]}"}
            r = client.post(f"/v1/domains/{name}/ask", json={"question": "How do I stop a nosebleed?"}, headers=headers)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["domain"] == name and isinstance(body["text"], str)
            assert body["timings"]["generate_ms"] > 0
            r = client.post(
                "/v1/chat/completions",
                json={"model": name, "messages": [{"role": "user", "content": "What helps with sunburn?"}]},
                headers=headers,
            )
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["role"] == "assistant"
    # The generator really runs the artifact's weights.
    generator = assistants.domains["clinic"].generator
    assert generator.model_path() == ArtifactStore().model_dir("clinic-lora")
