"""Fixtures shared by the whole suite.

Every test gets its own state dir (``FOURFOLD_HOME``) and a fresh settings/plugin-host
cache, so tests never see each other's indexes, artifacts or broker files.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from .helpers.entry_points import add_declared_builtins
from .helpers.qdrant_fixtures import _qdrant_server, qdrant_server_url  # noqa: F401  (fixtures for the whole suite)

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

add_declared_builtins(REPO_ROOT / "pyproject.toml")  # builtins added since the last `make install`


@pytest.fixture(autouse=True)
def fourfold_home(tmp_path_factory, monkeypatch) -> Path:
    """A private state dir for each test; settings and the plugin host are re-read."""
    home = tmp_path_factory.mktemp("fourfold-home")
    monkeypatch.setenv("FOURFOLD_HOME", str(home))
    for var in ("FOURFOLD_LOAD_PLUGINS", "FOURFOLD_DISABLE_PLUGINS", "FOURFOLD_TRACE_PLUGINS", "FOURFOLD_BROKER_URL", "FOURFOLD_QDRANT_URL"):
        monkeypatch.delenv(var, raising=False)
    from fourfold import plugins, settings

    settings.get_settings(fresh=True)
    plugins._host = None
    yield home
    settings.get_settings(fresh=True)
    plugins._host = None


@pytest.fixture
def host():
    """A freshly loaded plugin host (entry points included)."""
    from fourfold.plugins import get_host

    return get_host(fresh=True)


@pytest.fixture
def shared_data() -> Path:
    """The public evaluation sets and knowledge folders beside the checkout."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"evaluation data not found at {SHARED_DATA}; it must sit beside the checkout as ../shared/data")
    return SHARED_DATA


@pytest.fixture
def write_manifest(tmp_path):
    """Write a manifest (YAML text, dedented) into ``tmp_path`` and return its path."""

    def write(text: str, name: str = "domain.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write
