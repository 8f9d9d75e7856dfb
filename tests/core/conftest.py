from __future__ import annotations

import pytest

from . import toy_plugin


@pytest.fixture
def toy_host(host):
    """The process host with the toy plugin registered (what the CLI then uses)."""
    host.register(toy_plugin, name="toy", distribution="toy-plugin")
    return host


@pytest.fixture
def toy_manifest(tmp_path, write_manifest):
    (tmp_path / "knowledge").mkdir(exist_ok=True)
    (tmp_path / "knowledge" / "a.toy").write_text("hello world")
    return write_manifest(toy_plugin.TOY_MANIFEST)
