"""A small domain (consumer-health text from the shipped medical sample) and a tiny
model trained on it once per module, shared by the training tests.

Budgets are tiny so that each run takes seconds on two CPU cores; the tests check that
training moves the measured numbers the right way, not how far.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from ...conftest import REPO_ROOT

MEDICAL_KNOWLEDGE = REPO_ROOT / "deploy" / "manifests" / "medical" / "knowledge"

# A model small enough to train in seconds: 1 layer, width 32, 32-token context.
TINY_TRAINING = {
    "vocab_size": 600,
    "layers": 1,
    "width": 32,
    "heads": 2,
    "context": 32,
    "batch_size": 8,
    "steps": 40,
    "learning_rate": 0.005,
    "warmup_steps": 4,
    "save_every": 10,
    "max_eval_blocks": 64,
}


def copy_knowledge(target: Path) -> Path:
    """The medical sample's markdown and text files (fast to load) in ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(MEDICAL_KNOWLEDGE.rglob("*")):
        if path.suffix in (".md", ".txt"):
            dest = target / path.relative_to(MEDICAL_KNOWLEDGE)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
    assert any(target.rglob("*.md")), f"no sample knowledge found in {MEDICAL_KNOWLEDGE}"
    return target


def instruction_pairs(n: int = 48) -> list[dict[str, str]]:
    """Consumer-health instruction/response pairs with a consistent answer style."""
    topics = [
        ("a migraine", "rest in a dark, quiet room, drink water and take a pain reliever early"),
        ("mild sunburn", "cool the skin with a damp cloth, drink water and stay out of the sun"),
        ("a nosebleed", "sit up, lean forward and pinch the soft part of the nose for ten minutes"),
        ("seasonal flu", "rest, drink fluids and stay at home until the fever has gone"),
        ("a sprained ankle", "rest it, apply ice, use a compression bandage and raise the leg"),
        ("heartburn", "eat smaller meals, avoid lying down after eating and limit fatty food"),
    ]
    pairs = []
    for i in range(n):
        topic, advice = topics[i % len(topics)]
        pairs.append(
            {
                "instruction": f"What should I do about {topic}? (question {i})",
                "response": f"For {topic}, {advice}. See a doctor if it gets worse or does not improve.",
            }
        )
    return pairs


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def manifest_text(training: dict | None = None, fine_tuning: list[dict] | None = None, extra: str = "") -> str:
    """A clinic manifest over ``knowledge/`` with the given stages (YAML flow style)."""
    lines = [
        "fourfold: 1",
        "domain: clinic",
        "title: Clinic assistant",
        "knowledge:",
        "  sources: [{path: knowledge}]",
    ]
    if training is not None:
        lines.append(f"training: {json.dumps(training)}")
    if fine_tuning:
        lines.append(f"fine_tuning: {json.dumps(fine_tuning)}")
    return "\n".join(lines) + "\n" + textwrap.dedent(extra)


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory) -> Path:
    """A state dir holding ``clinic-causal-lm``: the tiny model trained from scratch on
    the clinic knowledge, made once per test module."""
    from fourfold.domain import Domain
    from fourfold.plugins import PluginHost
    from fourfold.settings import Settings
    from fourfold.training import run_training

    root = tmp_path_factory.mktemp("clinic-trained")
    copy_knowledge(root / "knowledge")
    (root / "clinic.yaml").write_text(manifest_text({"use": "causal-lm", "with": TINY_TRAINING}))
    settings = Settings(home=root / "home")
    host = PluginHost(settings)
    run_training(Domain.from_file(root / "clinic.yaml", host=host, settings=settings))
    return root / "home"


@pytest.fixture
def clinic(tmp_path, fourfold_home, trained_home) -> Path:
    """A clinic domain folder (knowledge copied) whose state dir already holds the tiny
    trained model as artifact ``clinic-causal-lm``."""
    copy_knowledge(tmp_path / "knowledge")
    shutil.copytree(trained_home / "artifacts", fourfold_home / "artifacts", dirs_exist_ok=True)
    return tmp_path
