"""The training and fine-tuning stages of a domain: run the manifest's ``training:`` and
``fine_tuning:`` blocks, in order, each into an artifact with its lineage.

The CLI (``fourfold train``, ``fourfold fine-tune``) and the worker's Celery tasks call
:func:`run_training` and :func:`run_fine_tuning`. A stage whose inputs (component,
config, base model, data and knowledge hashes) match its artifact's is not run again:
the artifact is reused unless ``force`` is set.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fourfold import knowledge as kn
from fourfold._version import __version__
from fourfold.artifacts import MODEL_FOLDER, Artifact, ArtifactStore, check_name
from fourfold.calling import call_component
from fourfold.components import FineTuner, NullProgress, Progress, Trainer
from fourfold.errors import TrainingError
from fourfold.knowledge import knowledge_documents  # where it lived before; trainers read the knowledge through it

if TYPE_CHECKING:
    from fourfold.domain import Domain
    from fourfold.manifest.models import FineTuningBlock, TrainingBlock

__all__ = [
    "StageRun",
    "run_training",
    "run_fine_tuning",
    "run_stages",
    "planned_artifacts",
    "knowledge_documents",
    "knowledge_digest",
    "model_identity",
]

log = logging.getLogger("fourfold.training")

# Bump when what goes into a fingerprint changes meaning, so old artifacts are not reused.
_FINGERPRINT_FORMAT = 1


@dataclass(frozen=True)
class StageRun:
    """What one stage did: the artifact, and whether it was reused rather than made."""

    artifact: Artifact
    reused: bool
    stage: str  # "training" or "fine_tuning[i]"


# -- the domain's knowledge ---------------------------------------------------------------


def knowledge_digest(domain: "Domain") -> dict[str, Any]:
    """Identity of the knowledge base's content: file paths and content hashes (cheap:
    nothing is parsed)."""
    if domain.manifest.knowledge is None:
        return {"files": 0, "sha256": None}
    scan = kn.scan_domain(domain)
    total = hashlib.sha256()
    for file in sorted(scan.files, key=lambda f: f.relpath):
        total.update(f"{file.relpath}\0{scan.marker(file)}\n".encode())
    return {"files": len(scan.files), "sha256": total.hexdigest()}


# -- base models ------------------------------------------------------------------------


def model_identity(domain: "Domain", ref: str | None) -> dict[str, Any] | None:
    """What identifies a base model for the reuse check: an artifact's run, or a
    folder's file names, sizes and modification times."""
    if ref is None:
        return None
    if ref.startswith("artifact:"):
        artifact = ArtifactStore(domain.settings).get(ref.split(":", 1)[1])
        # The run, not just its inputs: a forced retrain makes a different model.
        return {"ref": ref, "fingerprint": artifact.fingerprint, "run": artifact.info.get("run_id")}
    folder = domain.resolve_model(ref)
    if not folder.is_dir():
        raise TrainingError(f"base model '{ref}' resolved to {folder}, which does not exist")
    files = sorted(
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    )
    return {"ref": ref, "folder": str(folder), "files": hashlib.sha256(json.dumps(files).encode()).hexdigest()}


# -- stages -------------------------------------------------------------------------------


def planned_artifacts(domain: "Domain") -> list[tuple[str, str]]:
    """``(stage, artifact name)`` for each training stage of the manifest, in run order.

    :raises TrainingError: when two stages would write the same artifact.
    """
    manifest = domain.manifest
    planned: list[tuple[str, str]] = []
    if manifest.training is not None:
        planned.append(("training", _artifact_name(domain, manifest.training)))
    for i, block in enumerate(manifest.fine_tuning):
        planned.append((f"fine_tuning[{i}]", _artifact_name(domain, block)))
    seen: dict[str, str] = {}
    for stage, name in planned:
        if name in seen:
            raise TrainingError(
                f"{manifest.path}: {seen[name]} and {stage} would both write artifact '{name}'; "
                f"give one of them another name with 'artifact:'"
            )
        seen[name] = stage
    return planned


def _artifact_name(domain: "Domain", block: "TrainingBlock | FineTuningBlock") -> str:
    return check_name(getattr(block, "artifact", None) or f"{domain.name}-{block.use}")


def run_training(domain: "Domain", progress: Progress | None = None, *, force: bool = False) -> StageRun | None:
    """Run the manifest's ``training:`` block (None when it has none).

    :param force: train again even when an artifact with the same inputs exists.
    """
    block = domain.manifest.training
    if block is None:
        return None
    planned_artifacts(domain)
    return _run_stage(domain, "training", block, progress or NullProgress(), force)


def run_fine_tuning(
    domain: "Domain", progress: Progress | None = None, *, force: bool = False, only: str | None = None
) -> list[StageRun]:
    """Run the manifest's ``fine_tuning:`` blocks in order.

    :param only: run just the block producing this artifact name.
    """
    planned = dict(planned_artifacts(domain))
    runs = []
    for i, block in enumerate(domain.manifest.fine_tuning):
        stage = f"fine_tuning[{i}]"
        if only is not None and planned[stage] != only:
            continue
        runs.append(_run_stage(domain, stage, block, progress or NullProgress(), force))
    if only is not None and not runs:
        raise TrainingError(
            f"{domain.manifest.path}: no fine_tuning block produces artifact '{only}' "
            f"(it produces: {', '.join(n for s, n in planned.items() if s.startswith('fine')) or 'nothing'})"
        )
    return runs


def run_stages(domain: "Domain", progress: Progress | None = None, *, force: bool = False) -> list[StageRun]:
    """Training, then fine-tuning: every stage of the manifest that makes a model."""
    runs = []
    trained = run_training(domain, progress, force=force)
    if trained is not None:
        runs.append(trained)
    runs.extend(run_fine_tuning(domain, progress, force=force))
    return runs


def _run_stage(domain: "Domain", stage: str, block: Any, progress: Progress, force: bool) -> StageRun:
    name = _artifact_name(domain, block)
    component = domain.component(block)
    if not isinstance(component, (Trainer, FineTuner)):
        raise TrainingError(f"{stage}: '{block.use}' is not a trainer or fine-tuner")
    is_trainer = isinstance(component, Trainer)
    spec = domain.host.get(block.kind, block.use)
    config = component.config.model_dump(mode="json")

    progress.start(f"{stage}: check inputs", total=None)
    base = None if is_trainer else component.base_model
    lineage: dict[str, Any] = {
        "format": _FINGERPRINT_FORMAT,
        "component": {"kind": component.kind, "name": component.name},
        "config": config,
        "inputs": call_component(component, "inputs"),
        "base": model_identity(domain, base),
    }
    if is_trainer or component.uses_knowledge:
        lineage["knowledge"] = knowledge_digest(domain)
    fingerprint = hashlib.sha256(json.dumps(lineage, sort_keys=True, default=str).encode()).hexdigest()

    store = ArtifactStore(domain.settings)
    with store.lock(name):
        existing = store.find(name)
        if existing is not None and existing.fingerprint == fingerprint and not force:
            log.info("%s: artifact '%s' is up to date; reused", stage, name)
            return StageRun(existing, reused=True, stage=stage)
        staging = store.staging_dir(name, fingerprint)
        if force:  # start over: no resuming from an earlier run's checkpoints
            shutil.rmtree(staging)
            staging.mkdir(parents=True)
        output_dir = staging / MODEL_FOLDER
        if output_dir.exists():  # a save cut short; checkpoints in work/ still resume
            shutil.rmtree(output_dir)
        output_dir.mkdir()
        work_dir = staging / "work"
        work_dir.mkdir(exist_ok=True)

        started = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        if is_trainer:
            texts = [d.text for d in knowledge_documents(domain, progress)]
            result = call_component(component, "train", texts, output_dir, progress, work_dir=work_dir)
        else:
            result = call_component(component, "fine_tune", output_dir, progress, work_dir=work_dir)
        finished = datetime.now(timezone.utc)
        if not any(output_dir.iterdir()):
            raise TrainingError(f"{stage}: {component.kind} '{component.name}' finished but saved nothing in {output_dir}")

        shutil.rmtree(work_dir, ignore_errors=True)
        info = {
            "kind": result.kind,
            "stage": stage,
            "component": {"kind": component.kind, "name": component.name, "plugin": spec.plugin if spec else None},
            "domain": domain.name,
            "manifest": str(domain.manifest.path) if domain.manifest.path else None,
            "base": base,
            "lineage": lineage,
            "config": config,
            "fingerprint": fingerprint,
            "run_id": uuid.uuid4().hex,
            "metrics": result.metrics,
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": finished.isoformat(timespec="seconds"),
            "duration_s": round(time.perf_counter() - t0, 2),
            "fourfold_version": __version__,
        }
        artifact = store.commit(name, staging, info)
        _drop_stale_staging(store, name)
    return StageRun(artifact, reused=False, stage=stage)


def _drop_stale_staging(store: ArtifactStore, name: str) -> None:
    """Checkpoints of runs whose inputs have since changed can never be resumed."""
    staging_root = store.root / ".staging"
    for entry in staging_root.glob(f"{name}-*"):
        suffix = entry.name[len(name) + 1 :]
        if len(suffix) == 16 and all(c in "0123456789abcdef" for c in suffix):
            shutil.rmtree(entry, ignore_errors=True)
