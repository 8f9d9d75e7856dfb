"""The five mistakes plugin authors make most — a missing method, a misspelt hook, a
wrong config type, raising at import, a wrong return type — are each reported when the
plugin loads or the manifest is validated, saying what to fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

from typer.testing import CliRunner

import fourfold
from fourfold.cli import app
from fourfold.plugins import PluginHost
from fourfold.settings import Settings

from . import toy_plugin


def _plugin(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.FOURFOLD_PLUGIN_API = "1.1"
    mod.__dict__.update(attrs)
    return mod


def _load(*plugins: tuple[str, object]) -> PluginHost:
    host = PluginHost(Settings(), load_entry_points=False)
    for name, obj in plugins:
        host.register(obj, name=name)
    return host


# -- 1. a missing method ----------------------------------------------------------------


def test_a_missing_method_is_refused_at_registration_with_its_signature():
    class HalfRetriever(fourfold.Retriever):
        name = "half"

        def open_store(self):
            return fourfold.FileIndexStore(name="half")

    def register_retrievers(register):
        register(HalfRetriever)

    host = _load(("half", _plugin("fourfold_half", register_retrievers=fourfold.hookimpl(register_retrievers))))
    record = host.plugins["half"]
    assert record.status == "failed"
    assert "HalfRetriever does not implement search that fourfold.Retriever requires" in record.error
    assert "add def search(self, reader, query, *, top_k=None, filters=None)" in record.error
    assert host.get("retriever", "half") is None


def test_a_missing_name_or_config_is_refused_naming_what_to_add():
    class Nameless(toy_plugin.ToyGenerator):
        name = ""

    class DictConfig(toy_plugin.ToyGenerator):
        name = "dict-config"
        Config = dict  # type: ignore[assignment]

    for label, cls, message in [
        ("nameless", Nameless, "Nameless has no name; add name = 'nameless'"),
        ("dictconfig", DictConfig, "DictConfig.Config is the class dict, not a pydantic model; declare it as class Config(fourfold.ComponentConfig)"),
    ]:
        def register_generators(register, _cls=cls):
            register(_cls)

        host = _load((label, _plugin(label, register_generators=fourfold.hookimpl(register_generators))))
        assert host.plugins[label].status == "failed"
        assert message in host.plugins[label].error


# -- 2. a misspelt hook -----------------------------------------------------------------


def test_a_misspelt_hook_fails_the_plugin_with_the_closest_hook_name():
    def register_prompt_strategy(register):
        register(toy_plugin.ToyPrompt)

    host = _load(("typo", _plugin("fourfold_typo", register_prompt_strategy=fourfold.hookimpl(register_prompt_strategy))))
    record = host.plugins["typo"]
    assert record.status == "failed"
    assert "register_prompt_strategy is marked @fourfold.hookimpl but no such hook exists; did you mean register_prompt_strategies?" in record.error


def test_a_register_function_without_the_marker_fails_the_plugin():
    def register_generators(register):
        register(toy_plugin.ToyGenerator)

    register_generators.__module__ = "fourfold_unmarked"
    host = _load(("unmarked", _plugin("fourfold_unmarked", register_generators=register_generators)))
    assert host.plugins["unmarked"].status == "failed"
    assert "register_generators is not marked @fourfold.hookimpl, so fourfold never calls it" in host.plugins["unmarked"].error


# -- 3. a wrong config type -------------------------------------------------------------


def test_a_wrong_config_value_is_reported_with_file_line_and_path(toy_host, write_manifest, tmp_path):
    (tmp_path / "knowledge").mkdir(exist_ok=True)
    path = write_manifest(toy_plugin.TOY_MANIFEST.replace("with: {top_k: 3}", "with: {top_k: many}"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "top_k: many" in text)
    assert f"{path}:{line}: retrieval.with.top_k: Input should be a valid integer" in result.output


# -- 4. raising at import ---------------------------------------------------------------


def _installed_without_pip(site: Path, module: str, code: str) -> None:
    """A distribution as pip leaves it: the package and its dist-info with an entry point."""
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(code)
    dist = site / f"{module}-0.2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.2.0\n")
    (dist / "entry_points.txt").write_text(f"[fourfold]\n{module.removeprefix('fourfold_')} = {module}\n")


def test_a_plugin_that_raises_at_import_is_reported_with_its_traceback(tmp_path):
    site = tmp_path / "site"
    _installed_without_pip(site, "fourfold_explodes", textwrap.dedent('''
        import fourfold

        FOURFOLD_PLUGIN_API = "1.1"

        def read_settings():
            raise KeyError("FAQ_URL")

        SETTINGS = read_settings()
    '''))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "COLUMNS": "200"}

    listed = subprocess.run([sys.executable, "-m", "fourfold", "plugins", "--json"], capture_output=True, text=True, env=env, timeout=120)
    record = {r["name"]: r for r in json.loads(listed.stdout)}["explodes"]
    assert record["status"] == "failed"
    assert record["error"] == "failed to load plugin \"fourfold-explodes[explodes]\" due to KeyError: 'FAQ_URL'"
    assert "Traceback (most recent call last)" in record["traceback"]
    assert "fourfold_explodes/__init__.py\", line 7, in read_settings" in record["traceback"]

    plain = subprocess.run([sys.executable, "-m", "fourfold", "plugins"], capture_output=True, text=True, env=env, timeout=120)
    assert "run 'fourfold -v plugins' for the traceback" in plain.stdout
    verbose = subprocess.run([sys.executable, "-m", "fourfold", "-v", "plugins"], capture_output=True, text=True, env=env, timeout=120)
    assert "in read_settings" in verbose.stdout and "raise KeyError(\"FAQ_URL\")" in verbose.stdout


# -- 5. a wrong return type -------------------------------------------------------------


class DictRetriever(fourfold.Retriever):
    """Returns plain dicts instead of passages."""

    name = "dict-results"

    def open_store(self):
        return fourfold.FileIndexStore(name=self.name)

    def search(self, reader, query, *, top_k=None, filters=None):
        return [{"text": c.text, "score": 1.0} for c in reader.chunks()][: top_k or self.config.top_k]


class DictLoader(fourfold.Loader):
    """Returns the text instead of a document."""

    name = "dict-loader"
    extensions = ("faq",)

    def load(self, file):
        return {"title": file.relpath, "text": file.path.read_text()}


@fourfold.hookimpl
def register_retrievers(register):
    register(DictRetriever)


@fourfold.hookimpl
def register_loaders(register):
    register(DictLoader)


def test_a_wrong_return_type_is_reported_naming_the_component_and_what_to_return(host, write_manifest, tmp_path):
    host.register(toy_plugin, name="toy")
    host.register(_plugin("fourfold_wrong", register_retrievers=register_retrievers, register_loaders=register_loaders), name="wrong")
    assert host.plugins["wrong"].status == "loaded", host.plugins["wrong"].error
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir(exist_ok=True)
    (knowledge / "cats.md").write_text("# Cats\n\nAdult cats are fed twice a day.\n")
    (knowledge / "rows.faq").write_text("Q: feed? A: twice\n")
    path = write_manifest(textwrap.dedent("""
        fourfold: 1
        domain: wrong
        title: Wrong returns
        knowledge: {sources: [{path: knowledge, include: ["*.md", "*.faq"]}]}
        embedding: {use: toy-embedder}
        retrieval: {use: dict-results}
    """))
    built = CliRunner().invoke(app, ["index", "build", str(path)])
    assert built.exit_code == 0, built.output
    assert "rows.faq: loader 'dict-loader' returned dict, expected fourfold.LoadedDocument" in built.output

    searched = CliRunner().invoke(app, ["search", str(path), "how often are cats fed"])
    assert searched.exit_code == 1
    assert (
        "retriever 'dict-results' (plugin 'wrong') in domain 'wrong': search() returned a list containing dict; "
        "return fourfold.Passage(chunk=..., score=...) items" in " ".join(searched.output.split())
    )
