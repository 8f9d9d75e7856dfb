"""The plugin host: entry points, isolation of broken plugins, allow/block lists, stamping."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fourfold
from fourfold.plugins import PluginHost
from fourfold.settings import Settings

from . import toy_plugin

GOOD_PLUGIN = '''
import fourfold

FOURFOLD_PLUGIN_API = "1.0"


class Shouter(fourfold.Generator):
    name = "shouter"

    class Config(fourfold.ComponentConfig):
        suffix: str = "!"

    def generate(self, prompt, limits):
        return prompt.question.upper() + self.config.suffix


@fourfold.hookimpl
def register_generators(register):
    register(Shouter)


@fourfold.hookimpl
def index_published(domain, version, report):
    pass
'''

BROKEN_PLUGIN = '''
raise RuntimeError("the broken plugin cannot start")
'''


def _make_distribution(root: Path, dist: str, module: str, code: str) -> Path:
    pkg = root / dist
    (pkg / module).mkdir(parents=True)
    (pkg / module / "__init__.py").write_text(code)
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{dist}"
            version = "0.3.0"

            [project.entry-points.fourfold]
            {module.removeprefix("fourfold_")} = "{module}"
            """
        )
    )
    return pkg


@pytest.fixture(scope="module")
def installed_plugins(tmp_path_factory) -> Path:
    """A throw-away good plugin and a broken one, really installed (pip) into a folder."""
    root = tmp_path_factory.mktemp("plugin-dists")
    site = root / "site"
    for dist, module, code in [
        ("fourfold-shouter", "fourfold_shouter", GOOD_PLUGIN),
        ("fourfold-broken", "fourfold_broken", BROKEN_PLUGIN),
    ]:
        pkg = _make_distribution(root, dist, module, code)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(site), str(pkg)],
            check=True,
            capture_output=True,
        )
    return site


def _fourfold(site: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # The checkout's own path stays on PYTHONPATH, so the fourfold under test runs.
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    return subprocess.run([sys.executable, "-m", "fourfold", *args], capture_output=True, text=True, env=full_env, timeout=120)


def test_installed_plugin_is_listed_used_and_a_broken_one_is_reported(installed_plugins, tmp_path):
    listed = _fourfold(installed_plugins, "plugins", "--all", "--json")
    assert listed.returncode == 0, listed.stderr
    records = {r["name"]: r for r in json.loads(listed.stdout)}
    shouter = records["shouter"]
    assert shouter["status"] == "loaded" and not shouter["builtin"]
    assert shouter["distribution"] == "fourfold-shouter" and shouter["version"] == "0.3.0"
    assert shouter["components"] == {"generator": ["shouter"]}
    assert shouter["api_version"] == "1.0"
    assert "index_published" in shouter["hooks"]
    broken = records["broken"]
    assert broken["status"] == "failed"
    assert broken["error"] == 'failed to load plugin "fourfold-broken[broken]" due to RuntimeError: the broken plugin cannot start'
    assert "fourfold_broken/__init__.py" in broken["traceback"] and broken["traceback"].rstrip().endswith("RuntimeError: the broken plugin cannot start")
    assert shouter["traceback"] is None
    # every builtin still loads
    assert all(r["status"] == "loaded" for r in records.values() if r["builtin"])

    # the plugin's component is usable from a manifest...
    (tmp_path / "kb").mkdir()
    manifest = tmp_path / "m.yaml"
    manifest.write_text("fourfold: 1\ndomain: shout\ntitle: Shout\nknowledge: {sources: [{path: kb}]}\ngeneration: {use: shouter, with: {suffix: '?!'}}\n")
    code = (
        "import fourfold; from fourfold.plugins import get_host;"
        f"d = fourfold.Domain(fourfold.load_manifest({str(manifest)!r}, get_host()), get_host());"
        "p = fourfold.Prompt(messages=[], question='is it loud');"
        "print(d.generator.generate(p, fourfold.GenerationLimits()), d.generator.context.plugin)"
    )
    path = os.pathsep.join([str(installed_plugins), os.environ.get("PYTHONPATH", "")])
    used = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path})
    assert used.returncode == 0, used.stderr
    assert used.stdout.strip() == "IS IT LOUD?! shouter"

    # ...while a manifest naming a missing component says which plugin failed and why.
    manifest.write_text(manifest.read_text().replace("use: shouter", "use: broken"))
    result = _fourfold(installed_plugins, "validate", str(manifest))
    assert result.returncode == 1
    assert "no generator named 'broken' is installed" in result.stderr
    assert "plugin 'broken' from fourfold-broken 0.3.0 is failed" in result.stderr
    assert "RuntimeError: the broken plugin cannot start" in result.stderr


def test_allow_list_and_block_list(installed_plugins):
    only = _fourfold(installed_plugins, "plugins", "--all", "--json", env={"FOURFOLD_LOAD_PLUGINS": "fourfold-shouter"})
    records = {r["name"]: r for r in json.loads(only.stdout)}
    assert records["shouter"]["status"] == "loaded"
    assert records["broken"]["status"] == "not-allowed"
    assert all(r["status"] == "loaded" for r in records.values() if r["builtin"])  # builtins always load

    none = _fourfold(installed_plugins, "plugins", "--all", "--json", env={"FOURFOLD_LOAD_PLUGINS": ""})
    assert {r["name"]: r["status"] for r in json.loads(none.stdout)}["shouter"] == "not-allowed"

    blocked = _fourfold(installed_plugins, "plugins", "--json", env={"FOURFOLD_DISABLE_PLUGINS": "shouter"})
    assert {r["name"]: r["status"] for r in json.loads(blocked.stdout)}["shouter"] == "disabled"


def test_plugins_table_shows_the_failure(installed_plugins):
    result = _fourfold(installed_plugins, "plugins")
    assert result.returncode == 0
    assert "shouter" in result.stdout and "failed" in result.stdout
    assert "the broken plugin cannot start" in result.stdout


def _host_with(*plugins) -> PluginHost:
    host = PluginHost(Settings(), load_entry_points=False)
    for name, module in plugins:
        host.register(module, name=name)
    return host


def _module(name: str, **attrs):
    import types

    mod = types.ModuleType(name)
    mod.FOURFOLD_PLUGIN_API = "1.0"
    mod.__dict__.update(attrs)
    return mod


def test_components_are_stamped_with_their_plugin():
    host = _host_with(("toy", toy_plugin))
    spec = host.get("generator", "toy-generator")
    assert spec.plugin == "toy" and spec.cls is toy_plugin.ToyGenerator
    assert host.plugins["toy"].components["generator"] == ["toy-generator"]


def test_duplicate_component_name_is_an_error_naming_both_plugins():
    class Other(toy_plugin.ToyGenerator):
        pass

    dup = _module("dup", register_generators=fourfold.hookimpl(lambda register: register(Other)))
    dup.register_generators.__name__ = "register_generators"
    host = _host_with(("toy", toy_plugin), ("dup", dup))
    record = host.plugins["dup"]
    assert record.status == "failed"
    assert "plugin 'dup' registers generator 'toy-generator', which plugin 'toy' already registers" in record.error
    assert host.get("generator", "toy-generator").plugin == "toy"


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        (None, "declares no FOURFOLD_PLUGIN_API"),
        ("2.0", "targets plugin API 2.0, but this fourfold offers 1.4"),
        ("1.9", "targets plugin API 1.9"),
        ("one", "is not a version like"),
    ],
)
def test_incompatible_plugin_api_is_refused(declared, message):
    mod = _module("old")
    if declared is None:
        del mod.FOURFOLD_PLUGIN_API
    else:
        mod.FOURFOLD_PLUGIN_API = declared
    host = _host_with(("old", mod))
    assert host.plugins["old"].status == "failed"
    assert message in host.plugins["old"].error


def test_a_register_hook_that_raises_or_registers_junk_is_isolated():
    def boom(register):
        raise ValueError("no config file")

    def junk(register):
        register(object)

    def badname(register):
        class Bad(toy_plugin.ToyGenerator):
            name = "Bad Name"

        register(Bad)

    mods = []
    for label, fn in [("boom", boom), ("junk", junk), ("badname", badname)]:
        fn.__name__ = "register_generators"
        mods.append((label, _module(label, register_generators=fourfold.hookimpl(fn))))
    host = _host_with(("toy", toy_plugin), *mods)
    assert "register_generators() raised ValueError: no config file" in host.plugins["boom"].error
    assert "which is not a subclass of fourfold.Generator" in host.plugins["junk"].error
    assert "'Bad Name' is not a kebab-case name" in host.plugins["badname"].error
    assert host.plugins["toy"].status == "loaded"
    assert set(host.components("generator")) == {"toy-generator"}


def test_trace_plugins_logs_hook_calls(caplog):
    import logging

    host = PluginHost(Settings(trace_plugins=True), load_entry_points=False)
    host.register(_module("listener", index_published=fourfold.hookimpl(lambda domain, version, report: None)), name="listener")
    with caplog.at_level(logging.INFO, logger="fourfold.plugins"):
        host.hook.index_published(domain="d", version="v1", report=None)
    assert any("hook index_published plugins=listener took=" in r.message for r in caplog.records)
