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
from fourfold.errors import ConfigError
from fourfold.trust.claims import ClaimVerifier

if TYPE_CHECKING:
    from fourfold.domain import Domain

__all__ = ["load_claim_verifier"]


def load_claim_verifier(domain: "Domain") -> ClaimVerifier:
    """The verifier of ``trust.verifier``, loaded (once per call: cache the result).

    :raises ConfigError: naming the manifest setting, when the folder does not exist or
        no installed fine-tuner loads it.
    """
    ref = domain.manifest.trust.verifier
    where = f"{domain.manifest.path}: trust.verifier"
    if not ref:
        raise ConfigError(f"{where}: trust.verifier_mode '{domain.manifest.trust.verifier_mode}' needs a verifier; none is named")
    folder = Path(domain.resolve_model(ref))
    if not folder.is_dir():
        raise ConfigError(f"{where}: '{ref}' resolved to {folder}, which does not exist; train it with fine-tuner 'verifier-cross-encoder'")
    name = _producer(folder)
    candidates = [n for n, spec in domain.host.components("fine_tuner").items() if getattr(spec.cls, "produces", None) == "claim-verifier"]
    if name is None:
        if len(candidates) != 1:
            found = ", ".join(sorted(candidates)) or "none"
            raise ConfigError(f"{where}: cannot tell which fine-tuner loads {folder}; fine-tuners that produce claim verifiers: {found}")
        name = candidates[0]
    if domain.host.get("fine_tuner", name) is None:
        raise ConfigError(f"{where}: {folder} was saved by fine-tuner '{name}', which is not installed")
    verifier = domain.build("fine_tuner", name, where=where).claim_verifier(folder)  # type: ignore[attr-defined]
    if verifier is None:
        raise ConfigError(f"{where}: fine-tuner '{name}' does not load claim verifiers (it produces {getattr(domain.host.get('fine_tuner', name).cls, 'produces', '?')})")
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
