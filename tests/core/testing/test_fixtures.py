"""The pytest fixtures fourfold gives plugin authors (entry point pytest11 ``fourfold``):
a fresh host, a plugin registered for one test, a ready-made domain."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

AUTHOR_TESTS = '''
import json
import types

import fourfold
from fourfold.plugins import get_host

FOURFOLD_PLUGIN_API = "1.0"


class Echo(fourfold.Generator):
    name = "echo"

    def generate(self, prompt, limits):
        return prompt.question


def echo_plugin():
    mod = types.ModuleType("fourfold_echo")
    mod.FOURFOLD_PLUGIN_API = "1.0"
    mod.register_generators = fourfold.hookimpl(lambda register: register(Echo))
    mod.register_generators.__name__ = "register_generators"
    return mod


def test_registered_for_this_test(register_plugin, fourfold_host):
    record = register_plugin(echo_plugin(), name="echo")
    assert record.status == "loaded"
    assert fourfold_host.get("generator", "echo").plugin == "echo"
    assert get_host() is fourfold_host  # what the CLI sees in-process
    from typer.testing import CliRunner
    from fourfold.cli import app

    listed = json.loads(CliRunner().invoke(app, ["plugins", "--json"]).output)
    assert {r["name"] for r in listed} >= {"echo"}


def test_gone_in_the_next_test(fourfold_host):
    assert fourfold_host.get("generator", "echo") is None


def test_a_plugin_that_does_not_load_fails_the_test(register_plugin):
    broken = types.ModuleType("fourfold_broken")
    register_plugin(broken, name="broken")


def test_a_domain_over_sample_knowledge(fourfold_domain, register_plugin):
    assert fourfold_domain.name == "sample"
    knowledge = fourfold_domain.manifest.base_dir / "knowledge"
    assert sorted(p.suffix for p in knowledge.rglob("*.*")) == [".html", ".md", ".md", ".md", ".pdf", ".pdf", ".txt"]
    assert fourfold_domain.retriever.name == "hybrid"


def test_a_domain_with_chosen_components(make_fourfold_domain, register_plugin):
    register_plugin(echo_plugin(), name="echo")
    domain = make_fourfold_domain(domain="echoes", generation={"use": "echo"}, prompt={"use": "plain"})
    assert domain.generator.generate(fourfold.Prompt(messages=[], question="hello?"), fourfold.GenerationLimits()) == "hello?"
'''


def _pytest(folder, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOURFOLD_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(folder), *args],
        capture_output=True, text=True, cwd=folder, timeout=300, env=env,
    )


@pytest.fixture(scope="module")
def author_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("author")
    (folder / "test_author.py").write_text(textwrap.dedent(AUTHOR_TESTS))
    return folder, _pytest(folder, "test_author.py")


def test_fixtures_work_for_an_author(author_run):
    _, result = author_run
    assert "1 failed, 4 passed" in result.stdout, result.stdout[-3000:]
    assert "FAILED test_author.py::test_a_plugin_that_does_not_load_fails_the_test" in result.stdout
    assert "plugin 'broken' did not load: plugin 'broken': declares no FOURFOLD_PLUGIN_API" in result.stdout


def test_the_fixtures_are_inert_and_can_be_turned_off(author_run):
    folder, _ = author_run
    off = _pytest(folder, "-p", "no:fourfold", "test_author.py::test_gone_in_the_next_test")
    assert off.returncode == 1
    assert "fixture 'fourfold_host' not found" in off.stdout
    (folder / "test_plain.py").write_text("import os\n\ndef test_plain():\n    assert 'FOURFOLD_HOME' not in os.environ\n")
    plain = _pytest(folder, "test_plain.py")
    assert plain.returncode == 0, plain.stdout


@pytest.mark.slow
def test_a_domain_with_an_index_built_by_the_lifecycle(make_fourfold_domain):
    domain = make_fourfold_domain(retrieval={"use": "bm25", "with": {"top_k": 3}}, build_index=True)
    passages, version = domain.search("How often should adult cats be fed?")
    assert version and passages[0].chunk.source == "guides/cats.md"
    answer = domain.answer("How often should adult cats be fed?")
    assert "twice a day" in answer.text
    assert answer.citations and answer.citations[0].source == "guides/cats.md"
