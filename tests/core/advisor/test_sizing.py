"""The advisor sizes any component through its cost description (``cost_profile()``), a
third-party one as well as a builtin; one that describes nothing, or fails to, is
reported by name and plugin, never left out in silence."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import fourfold
from fourfold.advisor import advise
from fourfold.cli import app
from fourfold.domain import Domain

from .conftest import CALIBRATION


class SilentTrainer(fourfold.Trainer):
    """A trainer written before 1.4: it says nothing about its cost."""

    name = "silent"

    def train(self, texts, output_dir, progress, *, work_dir=None):
        return fourfold.TrainingResult(output_dir, {})


class BrokenTuner(fourfold.FineTuner):
    name = "broken"

    def cost_profile(self):
        raise KeyError("steps_this_run")

    def fine_tune(self, output_dir, progress, *, work_dir=None):
        return fourfold.TrainingResult(output_dir, {})


class Unsized:
    FOURFOLD_PLUGIN_API = "1.0"

    @fourfold.hookimpl
    def register_trainers(self, register):
        register(SilentTrainer)

    @fourfold.hookimpl
    def register_fine_tuners(self, register):
        register(BrokenTuner)


KNOWLEDGE = "# Hand washing\n\nWash your hands with soap for twenty seconds before eating and after the toilet.\n"


def test_a_component_that_cannot_be_sized_is_reported_with_its_plugin(host, write_manifest, tmp_path):
    host.register(Unsized(), name="unsized-plugin")
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "hands.md").write_text(KNOWLEDGE)
    path = write_manifest("""
        fourfold: 1
        domain: hygiene
        title: Hygiene
        knowledge: {sources: [{path: kb}]}
        training: {use: silent, artifact: silent-model}
        fine_tuning: [{use: broken, artifact: broken-model}]
        generation: {use: extractive}
    """)
    advice = advise(Domain.from_file(path, host), calibration=CALIBRATION)
    assert advice.unsized == [
        "training: cannot be sized: trainer 'silent' (unsized-plugin) does not describe its cost",
        "fine_tuning[0]: cannot be sized: fine tuner 'broken' (unsized-plugin): its cost_profile() raised KeyError: 'steps_this_run'",
    ]
    assert set(advice.unsized) <= set(advice.notes)
    assert advice.to_dict()["cannot_be_sized"] == advice.unsized
    assert advice.line("training") is None and advice.line("fine_tuning[0]") is None
    assert advice.line("index-build") is not None and advice.line("training-125m") is not None  # the rest is still costed


@pytest.mark.slow
def test_a_scaffolded_trainer_is_sized_by_advise(tmp_path):
    """``fourfold new-plugin --kind trainer``, installed as a user installs it: advise
    sizes it from its own description, with nothing in the advisor knowing its name."""
    assert CliRunner().invoke(app, ["new-plugin", "tiny-gpt", "--kind", "trainer", "--dir", str(tmp_path)]).exit_code == 0
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(site),
                    str(tmp_path / "fourfold-tiny-gpt")], check=True, capture_output=True, timeout=300)
    home = tmp_path / "home"
    home.mkdir()
    (home / "calibration.json").write_text(json.dumps(CALIBRATION))
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "hands.md").write_text(KNOWLEDGE * 20)
    manifest = tmp_path / "domain.yaml"
    manifest.write_text(
        "fourfold: 1\ndomain: tiny\ntitle: Tiny\nknowledge: {sources: [{path: kb}]}\n"
        "training: {use: tiny-gpt, with: {steps: 50, width: 64, layers: 2, vocab_size: 1000, context: 64}}\n"
        "generation: {use: extractive}\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "FOURFOLD_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "fourfold", "advise", str(manifest), "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    advice = json.loads(done.stdout)
    assert advice["cannot_be_sized"] == []
    line = next(x for x in advice["combination"]["lines"] if x["key"] == "training")
    expected = fourfold.ModelShape.gpt2(vocab=1000, width=64, layers=2, context=64, heads=1)
    assert line["facts"]["parameters"]["value"] == expected.parameters
    assert line["facts"]["steps"]["value"] == 50 and line["facts"]["tokens trained"]["value"] == 50 * 64
    training_flops = 50 * 64 * expected.training_flops_per_token(64)
    assert line["here"]["value"] > 0 and training_flops < line["flops"]["value"] < 1.05 * training_flops  # + held-out evaluation


def test_a_calibration_stored_in_format_1_is_still_read(fourfold_home):
    from fourfold.advisor import Rates, load_calibration

    old = {k: v for k, v in CALIBRATION.items() if k not in ("generators", "fine_tuning")}
    old.update(format=1, lora=CALIBRATION["fine_tuning"], **{name: dict(g) for name, g in CALIBRATION["generators"].items()})
    old["smollm2"]["checkpoint"] = "reused"
    (fourfold_home / "calibration.json").write_text(json.dumps(old))
    now, then = Rates(CALIBRATION), Rates(load_calibration())
    assert then.generator_seconds("extractive").value == now.generator_seconds("extractive").value
    assert then.decode_seconds_per_token(1e8).value == now.decode_seconds_per_token(1e8).value
    assert then.setup_seconds("fine-tune").value == now.setup_seconds("fine-tune").value
    assert then.model_load_seconds(4e8).value == now.model_load_seconds(4e8).value
