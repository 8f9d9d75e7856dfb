"""The training stages without machine learning: a counting trainer and fine-tuner show
when runs happen, what they are given, and what the artifact records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fourfold
from fourfold.artifacts import ArtifactStore
from fourfold.domain import Domain
from fourfold.errors import ComponentError, TrainingError
from fourfold.training import planned_artifacts, run_fine_tuning, run_stages, run_training

CALLS: list[dict] = []


class CountingTrainer(fourfold.Trainer):
    name = "counting-trainer"

    class Config(fourfold.ComponentConfig):
        size: int = 1
        fail_after_checkpoint: bool = False

    def train(self, texts, output_dir, progress, *, work_dir=None):
        progress.start("train", total=1)
        resumed = (work_dir / "checkpoint").is_file()
        (work_dir / "checkpoint").write_text("half way")
        if self.config.fail_after_checkpoint and not resumed:
            raise RuntimeError("killed half way")
        CALLS.append({"texts": list(texts), "resumed": resumed})
        (output_dir / "config.json").write_text(json.dumps({"size": self.config.size}))
        return fourfold.TrainingResult(output_dir, {"before": {"heldout_perplexity": 9.0}, "after": {"heldout_perplexity": 3.0}})


class CountingTuner(fourfold.FineTuner):
    name = "counting-tuner"

    class Config(fourfold.ComponentConfig):
        base: str
        data: str | None = None

    @property
    def base_model(self):
        return self.config.base

    def inputs(self):
        return {"data": (self.context.path(self.config.data).read_text() if self.config.data else None)}

    def fine_tune(self, output_dir, progress, *, work_dir=None):
        CALLS.append({"base": str(self.context.resolve_model(self.config.base))})
        (output_dir / "config.json").write_text("{}")
        return fourfold.TrainingResult(output_dir, {})


class StagePlugin:
    FOURFOLD_PLUGIN_API = "1.0"

    @fourfold.hookimpl
    def register_trainers(self, register):
        register(CountingTrainer)

    @fourfold.hookimpl
    def register_fine_tuners(self, register):
        register(CountingTuner)


@pytest.fixture
def stage_host(host):
    host.register(StagePlugin(), name="stages")
    CALLS.clear()
    return host


@pytest.fixture
def domain_dir(tmp_path):
    (tmp_path / "knowledge").mkdir()
    (tmp_path / "knowledge" / "a.md").write_text("# Alpha\n\nAlpha text about cats.\n")
    (tmp_path / "knowledge" / "b.txt").write_text("Beta text about dogs.\n")
    (tmp_path / "data.txt").write_text("v1")
    return tmp_path


def write(folder: Path, training: str = "{use: counting-trainer}", fine_tuning: str = "") -> Path:
    path = folder / "clinic.yaml"
    text = f"fourfold: 1\ndomain: clinic\ntitle: Clinic\nknowledge: {{sources: [{{path: knowledge}}]}}\ntraining: {training}\n"
    if fine_tuning:
        text += f"fine_tuning: {fine_tuning}\n"
    path.write_text(text)
    return path


def test_training_gets_the_knowledge_and_records_lineage(stage_host, domain_dir):
    run = run_training(Domain.from_file(write(domain_dir), host=stage_host))
    assert not run.reused and run.stage == "training"
    texts = CALLS[0]["texts"]
    assert len(texts) == 2 and "cats" in texts[0] and "dogs" in texts[1]  # one per document, in path order
    info = run.artifact.info
    assert run.artifact.name == "clinic-counting-trainer"
    assert info["component"] == {"kind": "trainer", "name": "counting-trainer", "plugin": "stages"}
    assert info["lineage"]["knowledge"]["files"] == 2
    assert info["config"] == {"size": 1, "fail_after_checkpoint": False}
    assert info["metrics"]["after"]["heldout_perplexity"] == 3.0
    assert info["domain"] == "clinic" and info["manifest"].endswith("clinic.yaml")
    assert info["fourfold_version"] == fourfold.__version__
    assert not (run.artifact.path / "work").exists()


def test_unchanged_inputs_are_reused_and_any_change_reruns(stage_host, domain_dir):
    manifest = write(domain_dir)
    domain = Domain.from_file(manifest, host=stage_host)
    assert not run_training(domain).reused
    assert run_training(domain).reused
    assert not run_training(domain, force=True).reused
    assert len(CALLS) == 2

    (domain_dir / "knowledge" / "b.txt").write_text("Beta text about wolves.\n")
    assert not run_training(Domain.from_file(manifest, host=stage_host)).reused

    changed = write(domain_dir, "{use: counting-trainer, with: {size: 2}}")
    assert not run_training(Domain.from_file(changed, host=stage_host)).reused
    assert len(CALLS) == 4


def test_a_failed_run_leaves_no_artifact_and_the_rerun_resumes(stage_host, domain_dir):
    manifest = write(domain_dir, "{use: counting-trainer, with: {fail_after_checkpoint: true}}")
    with pytest.raises(ComponentError, match="killed half way"):
        run_training(Domain.from_file(manifest, host=stage_host))
    assert ArtifactStore().list() == []
    run = run_training(Domain.from_file(manifest, host=stage_host))
    assert CALLS[-1]["resumed"] is True and not run.reused


def test_fine_tuning_runs_on_the_trained_artifact_and_follows_its_changes(stage_host, domain_dir):
    tuner = "[{use: counting-tuner, artifact: clinic-tuned, with: {base: 'artifact:clinic-counting-trainer', data: data.txt}}]"
    manifest = write(domain_dir, fine_tuning=tuner)
    domain = Domain.from_file(manifest, host=stage_host)
    assert planned_artifacts(domain) == [("training", "clinic-counting-trainer"), ("fine_tuning[0]", "clinic-tuned")]
    runs = run_stages(domain)
    assert [(r.artifact.name, r.reused) for r in runs] == [("clinic-counting-trainer", False), ("clinic-tuned", False)]
    assert CALLS[-1]["base"] == str(ArtifactStore().model_dir("clinic-counting-trainer"))
    tuned = ArtifactStore().get("clinic-tuned")
    assert tuned.info["base"] == "artifact:clinic-counting-trainer"
    assert tuned.info["lineage"]["base"]["fingerprint"] == ArtifactStore().get("clinic-counting-trainer").fingerprint

    assert [r.reused for r in run_stages(domain)] == [True, True]
    (domain_dir / "data.txt").write_text("v2")  # new data: fine-tune again, training reused
    assert [r.reused for r in run_stages(Domain.from_file(manifest, host=stage_host))] == [True, False]
    run_training(domain, force=True)  # a new base model: the fine-tune is stale
    assert [r.reused for r in run_fine_tuning(domain)] == [False]


def test_only_and_name_clashes(stage_host, domain_dir):
    two = "[{use: counting-tuner, with: {base: models/a}}, {use: counting-tuner, artifact: second, with: {base: models/b}}]"
    (domain_dir / "models" / "a").mkdir(parents=True)
    (domain_dir / "models" / "b").mkdir(parents=True)
    domain = Domain.from_file(write(domain_dir, fine_tuning=two), host=stage_host)
    [run] = run_fine_tuning(domain, only="second")
    assert run.artifact.name == "second" and CALLS[-1]["base"] == str(domain_dir / "models" / "b")
    with pytest.raises(TrainingError, match="no fine_tuning block produces artifact 'third'"):
        run_fine_tuning(domain, only="third")

    clash = "[{use: counting-tuner, artifact: clinic-counting-trainer, with: {base: models/a}}]"
    with pytest.raises(TrainingError, match=r"training and fine_tuning\[0\] would both write artifact 'clinic-counting-trainer'"):
        run_training(Domain.from_file(write(domain_dir, fine_tuning=clash), host=stage_host))


def test_a_missing_base_folder_is_named(stage_host, domain_dir):
    domain = Domain.from_file(write(domain_dir, fine_tuning="[{use: counting-tuner, with: {base: models/none}}]"), host=stage_host)
    with pytest.raises(TrainingError, match="base model 'models/none' resolved to .*models/none, which does not exist"):
        run_fine_tuning(domain)


def test_artifact_names_in_manifests_are_checked(stage_host, domain_dir):
    from fourfold.errors import ManifestError

    with pytest.raises(ManifestError, match=r"training\.artifact"):
        Domain.from_file(write(domain_dir, "{use: counting-trainer, artifact: Not_Valid}"), host=stage_host)
