"""Runtime isolation: a component that raises fails its own domain's answer with an error
naming the plugin; other domains in the same process keep answering. With
FOURFOLD_TRACE_PLUGINS=1 hook calls and component calls are logged with plugin and time."""

from __future__ import annotations

import logging
import textwrap
import types

import pytest

import fourfold
from fourfold.plugins import PluginHost
from fourfold.settings import Settings

from . import toy_plugin


class FaultyGenerator(fourfold.Generator):
    name = "faulty"

    def generate(self, prompt, limits):
        raise RuntimeError("the model server went away")


def _faulty_plugin():
    mod = types.ModuleType("fourfold_faulty")
    mod.FOURFOLD_PLUGIN_API = "1.0"

    def register_generators(register):
        register(FaultyGenerator)

    mod.register_generators = fourfold.hookimpl(register_generators)
    return mod


MANIFEST = """
fourfold: 1
domain: {name}
title: {name}
knowledge: {{sources: [{{path: knowledge}}]}}
embedding: {{use: toy-embedder}}
prompt: {{use: toy-prompt}}
retrieval: {{use: toy-retriever}}
generation: {{use: {generator}}}
"""


@pytest.fixture
def two_domains(tmp_path):
    def make(trace: bool):
        host = PluginHost(Settings(home=tmp_path / "home", trace_plugins=trace), load_entry_points=False)
        host.register(toy_plugin, name="toy")
        host.register(_faulty_plugin(), name="faulty", distribution="fourfold-faulty")
        (tmp_path / "knowledge").mkdir(exist_ok=True)
        domains = {}
        for name, generator in [("good", "toy-generator"), ("bad", "faulty")]:
            path = tmp_path / f"{name}.yaml"
            path.write_text(textwrap.dedent(MANIFEST.format(name=name, generator=generator)))
            domains[name] = fourfold.Domain.from_file(path, host=host)
        return domains

    return make


def test_a_failing_component_breaks_only_its_domain(two_domains):
    domains = two_domains(trace=False)
    assert domains["good"].answer("is it on?").text == "toy answer: is it on?"
    with pytest.raises(fourfold.ComponentError) as caught:
        domains["bad"].answer("is it on?")
    assert str(caught.value) == (
        "generator 'faulty' (plugin 'faulty') in domain 'bad': generate() raised RuntimeError: the model server went away"
    )
    assert caught.value.plugin == "faulty" and caught.value.domain == "bad"
    # the healthy domain keeps answering after the other one failed
    assert domains["good"].answer("still on?").text == "toy answer: still on?"


def test_trace_logs_hooks_and_component_calls(two_domains, caplog):
    domains = two_domains(trace=True)
    with caplog.at_level(logging.INFO, logger="fourfold.plugins"):
        domains["good"].answer("traced?")
        with pytest.raises(fourfold.ComponentError):
            domains["bad"].answer("traced?")
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("hook answer_question plugins=fourfold-core took=") for line in lines), lines
    for method in ("build", "finish"):
        assert any(line.startswith(f"component prompt_strategy toy-prompt.{method} plugin=toy domain=good took=") for line in lines), lines
    assert any(
        line.startswith("component generator toy-generator.generate plugin=toy domain=good took=") and line.endswith("ms")
        for line in lines
    ), lines
    assert any(
        line.startswith("component generator faulty.generate plugin=faulty domain=bad took=") and line.endswith("ms raised RuntimeError")
        for line in lines
    ), lines
    assert any("hook answer_question" in line and "raised" in line for line in lines), lines


def test_without_tracing_nothing_is_logged(two_domains, caplog):
    domains = two_domains(trace=False)
    with caplog.at_level(logging.INFO, logger="fourfold.plugins"):
        domains["good"].answer("quiet?")
    assert not [r for r in caplog.records if r.getMessage().startswith(("component ", "hook "))]


def test_through_the_api_the_failing_domain_names_the_plugin(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from fourfold.api.main import ApiOptions, create_app

    settings = Settings(home=tmp_path / "home")
    host = PluginHost(settings, load_entry_points=False)
    host.register(toy_plugin, name="toy")
    host.register(_faulty_plugin(), name="faulty", distribution="fourfold-faulty")
    (tmp_path / "knowledge").mkdir()
    paths = []
    for name, generator in [("good", "toy-generator"), ("bad", "faulty")]:
        path = tmp_path / f"{name}.yaml"
        text = MANIFEST.format(name=name, generator=generator) + f"serve: {{tokens_env: TOKENS_{name.upper()}}}\n"
        path.write_text(textwrap.dedent(text))
        monkeypatch.setenv(f"TOKENS_{name.upper()}", f"token-{name}-0123456789abcdef")
        paths.append(path)
    app = create_app(paths, host=host, settings=settings, options=ApiOptions(warm_up=False))
    with TestClient(app) as client:
        def ask(domain: str):
            return client.post(f"/v1/domains/{domain}/ask", json={"question": "is it on?"}, headers={"Authorization": f"Bearer token-{domain}-0123456789abcdef"})

        good = ask("good")
        assert good.status_code == 200, good.text
        assert good.json()["text"] == "toy answer: is it on?"
        bad = ask("bad")
        assert bad.status_code == 500
        error = bad.json()["error"]
        assert error["code"] == "component_error"
        assert error["message"] == "generator 'faulty' (plugin 'faulty') in domain 'bad': generate() raised RuntimeError: the model server went away"
        assert ask("good").status_code == 200
