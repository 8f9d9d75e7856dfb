"""The domain registry: which manifest each domain comes from, so processes that get
only a domain name (a Celery task, an API request, ``fourfold index build legal``) can
find it. (The plugins' components are registered on the plugin host,
:mod:`fourfold.plugins`; this is about domains.)

The registry is ``domains.json`` in the state dir, written whenever a command loads a
manifest (``up``, ``serve``, ``index build``, ``refresh``, …) through
:meth:`fourfold.Domain.from_file` with ``remember=True``. Processes that are given
manifests on their command line use those and record them here.
"""

from __future__ import annotations

import json
from pathlib import Path

from fourfold.errors import FourfoldError
from fourfold.files import write_json_atomic
from fourfold.manifest import Manifest
from fourfold.settings import Settings, get_settings

__all__ = ["remember_domain", "manifest_path_for", "known_domains"]


def _file(settings: Settings) -> Path:
    return settings.state_dir / "domains.json"


def known_domains(settings: Settings | None = None) -> dict[str, Path]:
    """Domain name → manifest path, as last recorded."""
    path = _file(settings or get_settings())
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise FourfoldError(f"{path}: cannot read the domain registry: {exc}") from None
    return {name: Path(p) for name, p in data.items()}


def remember_domain(manifest: Manifest, settings: Settings | None = None) -> None:
    """Record where ``manifest``'s domain comes from (atomic rewrite of the registry)."""
    settings = settings or get_settings()
    if manifest.path is None:
        return
    current = known_domains(settings)
    if current.get(manifest.domain) == manifest.path:
        return
    current[manifest.domain] = manifest.path
    target = _file(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(target, {k: str(v) for k, v in current.items()})


def manifest_path_for(domain: str, settings: Settings | None = None) -> Path:
    """The manifest recorded for ``domain``.

    :raises FourfoldError: naming the domain and the registry when it is unknown.
    """
    settings = settings or get_settings()
    known = known_domains(settings)
    if domain not in known:
        names = ", ".join(sorted(known)) or "none yet"
        raise FourfoldError(
            f"domain '{domain}' is not known in {_file(settings)} (known: {names}); "
            "run a command with its manifest file first, e.g. 'fourfold index build MANIFEST'"
        )
    return known[domain]
