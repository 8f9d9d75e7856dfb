"""The plugin API version each plugin targets is recorded and shown, loaded or refused."""

from __future__ import annotations

import json
import types

from typer.testing import CliRunner

import fourfold
from fourfold.cli import app


def _plugin(name: str, api: str):
    mod = types.ModuleType(name)
    mod.FOURFOLD_PLUGIN_API = api
    return mod


def test_plugins_shows_the_api_each_plugin_targets(host):
    host.register(_plugin("fourfold_current", "1.0"), name="current", distribution="fourfold-current")
    host.register(_plugin("fourfold_future", "1.9"), name="future", distribution="fourfold-future")
    host.register(_plugin("fourfold_next", "2.0"), name="next", distribution="fourfold-next")
    records = {r["name"]: r for r in json.loads(CliRunner().invoke(app, ["plugins", "--json"]).output)}
    assert (records["current"]["api_version"], records["current"]["status"]) == ("1.0", "loaded")
    assert (records["future"]["api_version"], records["future"]["status"]) == ("1.9", "failed")
    assert "targets plugin API 1.9, but this fourfold offers 1.4" in records["future"]["error"]
    assert (records["next"]["api_version"], records["next"]["status"]) == ("2.0", "failed")
    table = CliRunner().invoke(app, ["plugins"], env={"COLUMNS": "200"}).output
    row = next(line for line in table.splitlines() if " next " in line)
    assert "2.0" in row and "failed" in row


def test_builtins_target_the_current_api(host):
    for record in host.plugin_records():
        if record.builtin:
            assert record.api_version == fourfold.PLUGIN_API_VERSION, record.name
