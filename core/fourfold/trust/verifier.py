"""Loading the trained claim verifier a manifest names in ``trust.verifier``.

The model is a fine-tuner's artifact (``artifact:NAME``) or a folder; the fine-tuner
that saved it knows how to load it (:meth:`fourfold.FineTuner.claim_verifier`), so the
core needs no model code. Which fine-tuner: the one the artifact records as its
producer, else the one registered fine-tuner that produces claim verifiers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from fourfold.artifacts import ARTIFACT_FILE
from fourfold.errors import ManifestError
from fourfold.trust.claims import ClaimVerifier

if TYPE_CHECKING:
    from fourfold.domain import Domain

__all__ = ["load_claim_verifier"]


def load_claim_verifier(domain: "Domain") -> ClaimVerifier:
    """The verifier of ``trust.verifier``, loaded (once per call: cache the result).

    :raises ManifestError: naming the manifest setting (file and line), when the folder
        does not exist, no installed fine-tuner loads it, or loading it fails.
    """
    ref = domain.manifest.trust.verifier
    where = domain.manifest.where(("trust", "verifier"))
    if not ref:
        raise ManifestError([f"{where}: trust.verifier_mode '{domain.manifest.trust.verifier_mode}' needs a verifier; none is named"])
    folder = Path(domain.resolve_model(ref))
    if not folder.is_dir():
        raise ManifestError([f"{where}: '{ref}' resolved to {folder}, which does not exist; train it with fine-tuner 'verifier-cross-encoder'"])
    name = _producer(folder)
    candidates = [n for n, spec in domain.host.components("fine_tuner").items() if getattr(spec.cls, "produces", None) == "claim-verifier"]
    if name is None:
        if len(candidates) != 1:
            found = ", ".join(sorted(candidates)) or "none"
            raise ManifestError([f"{where}: cannot tell which fine-tuner loads {folder}; fine-tuners that produce claim verifiers: {found}"])
        name = candidates[0]
    if domain.host.get("fine_tuner", name) is None:
        raise ManifestError([f"{where}: {folder} was saved by fine-tuner '{name}', which is not installed"])
    tuner = domain.build("fine_tuner", name, where=where)
    try:
        verifier = tuner.claim_verifier(folder)  # type: ignore[attr-defined]
    except Exception as exc:  # a folder that is no verifier, a model that fails to load
        raise ManifestError([f"{where}: fine-tuner '{name}' could not load the verifier in {folder}: {type(exc).__name__}: {exc}"]) from exc
    if verifier is None:
        raise ManifestError([f"{where}: fine-tuner '{name}' does not load claim verifiers (it produces {getattr(type(tuner), 'produces', '?')})"])
    return verifier


def _producer(folder: Path) -> str | None:
    """The fine-tuner an artifact's record names (the model folder sits in the artifact's)."""
    record = folder.parent / ARTIFACT_FILE
    try:
        info = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    component = info.get("component") or {}
    return component.get("name") if component.get("kind") == "fine_tuner" else None
