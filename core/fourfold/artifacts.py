"""Trained and fine-tuned models kept in the state dir, each with its lineage.

Layout: ``<state_dir>/artifacts/<name>/`` holds ``artifact.json`` (what produced the
model: component, base model, data hashes, config, metrics, timestamps, fourfold
version) and ``model/`` (a folder transformers loads directly).

A run writes into ``artifacts/.staging/<name>-<fingerprint>/`` and only a finished run is
renamed to ``artifacts/<name>``, with ``artifact.json`` written last; so an interrupted
run never leaves something that looks like an artifact, and re-running the same inputs
finds its checkpoints again in the same staging folder.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from fourfold.errors import ArtifactNotFound, FourfoldError
from fourfold.files import write_json_atomic
from fourfold.manifest.models import ARTIFACT_NAME_PATTERN
from fourfold.settings import Settings, get_settings

__all__ = ["Artifact", "ArtifactStore", "ArtifactNotFound", "ARTIFACT_NAME_PATTERN", "ARTIFACT_FILE", "MODEL_FOLDER"]

ARTIFACT_FILE = "artifact.json"
MODEL_FOLDER = "model"
_NAME = re.compile(ARTIFACT_NAME_PATTERN)


@dataclass(frozen=True)
class Artifact:
    """One finished artifact.

    :ivar name: stable name (``artifact:<name>`` in manifests).
    :ivar path: its folder, ``<state_dir>/artifacts/<name>``.
    :ivar info: the parsed ``artifact.json``.
    """

    name: str
    path: Path
    info: dict[str, Any]

    @property
    def kind(self) -> str:
        """``causal-lm`` or ``embedder``: what the model can be used as."""
        return str(self.info.get("kind", ""))

    @property
    def model_dir(self) -> Path:
        """The folder to hand to ``from_pretrained``."""
        return self.path / MODEL_FOLDER

    @property
    def fingerprint(self) -> str:
        """Hash of everything the run read (component, config, data, base model)."""
        return str(self.info.get("fingerprint", ""))

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.info.get("metrics") or {})

    def summary(self) -> dict[str, Any]:
        """The fields ``fourfold artifacts`` shows."""
        return {
            "name": self.name,
            "kind": self.kind,
            "component": (self.info.get("component") or {}).get("name"),
            "domain": self.info.get("domain"),
            "base": self.info.get("base"),
            "finished_at": self.info.get("finished_at"),
            "metrics": self.metrics,
            "path": str(self.path),
        }


class ArtifactStore:
    """The artifacts of one state dir."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()

    @property
    def root(self) -> Path:
        return self.settings.state_dir / "artifacts"

    # -- reading --------------------------------------------------------------------

    def list(self) -> list[Artifact]:
        """Every finished artifact, by name. Staging folders and broken entries are
        not artifacts and are left out."""
        if not self.root.is_dir():
            return []
        out = []
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            artifact = self.find(entry.name)
            if artifact is not None:
                out.append(artifact)
        return out

    def find(self, name: str) -> Artifact | None:
        """The artifact called ``name``, or None."""
        path = self.root / name
        try:
            info = json.loads((path / ARTIFACT_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return Artifact(name=name, path=path, info=info)

    def get(self, name: str) -> Artifact:
        """The artifact called ``name``.

        :raises ArtifactNotFound: naming the known artifacts.
        """
        artifact = self.find(name) if _NAME.match(name) else None
        if artifact is None:
            known = [a.name for a in self.list()]
            listing = ", ".join(known) if known else "none yet"
            raise ArtifactNotFound(
                f"no artifact named '{name}' in {self.root} (known artifacts: {listing}); "
                "artifacts are made by 'fourfold train' and 'fourfold fine-tune'"
            )
        return artifact

    def model_dir(self, name: str) -> Path:
        """The model folder of artifact ``name`` (what ``artifact:<name>`` resolves to)."""
        return self.get(name).model_dir

    # -- writing --------------------------------------------------------------------

    def staging_dir(self, name: str, fingerprint: str) -> Path:
        """Where a run producing ``name`` from inputs ``fingerprint`` works. The same
        inputs always get the same folder, so a re-run resumes from its checkpoints."""
        check_name(name)
        path = self.root / ".staging" / f"{name}-{fingerprint[:16]}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the exclusive right to produce artifact ``name`` (across processes).

        :raises FourfoldError: when another process is producing it right now.
        """
        check_name(name)
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{name}.lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise FourfoldError(
                    f"artifact '{name}' is being produced by another process right now; try again when it is done"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def commit(self, name: str, staging: Path, info: dict[str, Any]) -> Artifact:
        """Turn a finished staging folder (with the model in ``staging/model``) into
        artifact ``name``, replacing an older artifact of that name.

        ``artifact.json`` is written last, then the folder is renamed into place, so
        readers only ever see complete artifacts.
        """
        check_name(name)
        if not (staging / MODEL_FOLDER).is_dir():
            raise FourfoldError(f"{staging}: the run left no '{MODEL_FOLDER}' folder; nothing to commit as '{name}'")
        info = {**info, "name": name, "model_dir": MODEL_FOLDER}
        write_json_atomic(staging / ARTIFACT_FILE, info)
        target = self.root / name
        # Folders, not files: the staging folder is renamed into place whole (and an older
        # artifact out of the way first), which fourfold.files' single-file writes cannot do.
        old: Path | None = None
        if target.exists():
            old = self.root / f".replaced-{name}-{time.time_ns()}"
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return Artifact(name=name, path=target, info=info)

    def delete(self, name: str) -> None:
        """Remove artifact ``name``."""
        artifact = self.get(name)
        trash = self.root / f".deleted-{name}-{time.time_ns()}"
        os.replace(artifact.path, trash)
        shutil.rmtree(trash, ignore_errors=True)


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise FourfoldError(
            f"'{name}' is not a valid artifact name: use lower-case letters, digits and '-', starting with a letter"
        )
    return name
