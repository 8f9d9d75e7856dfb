"""A component builds on another registered component through its context: the nested
``{use:, with:}`` is validated with that component's own Config (errors name file, line
and path), instances are shared when the configuration is equal, and the wrapping
component's options never reach the wrapped one."""

from __future__ import annotations

import json
import types

from pydantic import Field
from typer.testing import CliRunner

import fourfold
from fourfold.cli import app
from fourfold.domain import Domain

from . import toy_plugin


class BoostRetriever(fourfold.Retriever):
    """Re-orders what another retriever finds: passages containing a word go first."""

    name = "boost"

    class Config(fourfold.RetrieverConfig):
        word: str = "kittens"
        title_weight: float = Field(3.0, description="Same name as an option of bm25, another meaning.")
        base: fourfold.ComponentRef = fourfold.ComponentRef(use="bm25")

    def __init__(self, config, context):
        super().__init__(config, context)
        self.base = context.component(self.config.base)

    def open_store(self):
        return self.base.open_store()

    def search(self, reader, query, *, top_k=None, filters=None):
        top_k = top_k or self.config.top_k
        found = self.base.search(reader, query, top_k=top_k * 3, filters=filters)
        boosted = [fourfold.Passage(p.chunk, p.score + (1.0 if self.config.word in p.chunk.text.lower() else 0.0)) for p in found]
        boosted.sort(key=lambda p: (-p.score, p.chunk.id))
        return boosted[:top_k]


@fourfold.hookimpl
def register_retrievers(register):
    register(BoostRetriever)


def _boost_plugin():
    mod = types.ModuleType("fourfold_boost")
    mod.FOURFOLD_PLUGIN_API = "1.1"
    mod.register_retrievers = register_retrievers
    return mod


MANIFEST = """
fourfold: 1
domain: pets
title: Pets
knowledge: {sources: [{path: knowledge}]}
embedding: {use: toy-embedder}
retrieval:
  use: boost
  with:
    top_k: 2
    base:
      use: bm25
      with: {top_k: 4, k1: 1.2}
"""


def _setup(host, write_manifest, tmp_path, text=MANIFEST):
    host.register(toy_plugin, name="toy")
    host.register(_boost_plugin(), name="boost")
    assert host.plugins["boost"].status == "loaded", host.plugins["boost"].error
    (tmp_path / "knowledge").mkdir(exist_ok=True)
    (tmp_path / "knowledge" / "cats.md").write_text("# Cats\n\nKittens need four small meals a day.\n\n## Adults\n\nAdult cats eat twice a day.\n")
    return write_manifest(text)


def test_a_nested_with_is_validated_with_the_wrapped_components_config(host, write_manifest, tmp_path):
    path = _setup(host, write_manifest, tmp_path, MANIFEST.replace("k1: 1.2", "k1: 1.2, no_such: 1"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "no_such" in text)
    assert f"{path}:{line}: retrieval.with.base.with.no_such: unknown key 'no_such' (expected one of: top_k, k1, b, title_weight)" in result.output

    path.write_text(MANIFEST.replace("use: bm25", "use: bm2"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "use: bm2" in text)
    assert f"{path}:{line}: retrieval.with.base.use: no retriever named 'bm2' is installed" in result.output


def test_a_component_refers_to_itself_is_an_error(host, write_manifest, tmp_path):
    path = _setup(host, write_manifest, tmp_path, MANIFEST.replace("use: bm25", "use: boost"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "retrieval.with.base: components refer to each other in a loop (boost → boost)" in result.output


def test_the_wrapped_component_gets_its_own_config_and_is_shared(host, write_manifest, tmp_path):
    path = _setup(host, write_manifest, tmp_path)
    domain = Domain.from_file(path, host)
    wrapper = domain.retriever
    assert wrapper.base.name == "bm25"
    # only the nested with: reaches bm25: the wrapper's own title_weight does not leak
    assert (wrapper.base.config.top_k, wrapper.base.config.k1, wrapper.base.config.title_weight) == (4, 1.2, 1.0)
    assert wrapper.base.context.plugin == "bm25" and wrapper.base.context.domain == "pets"
    # asking again for an equal configuration gives the same instance
    again = wrapper.context.component(fourfold.ComponentRef(use="bm25", with_={"k1": 1.2, "top_k": 4}))
    assert again is wrapper.base


def test_searching_with_the_wrapped_retriever_uses_its_nested_config(host, write_manifest, tmp_path):
    path = _setup(host, write_manifest, tmp_path)
    built = CliRunner().invoke(app, ["index", "build", str(path)])
    assert built.exit_code == 0, built.output
    boosted = CliRunner().invoke(app, ["search", str(path), "how often do cats eat", "--json"])
    assert boosted.exit_code == 0, boosted.output
    plain = CliRunner().invoke(app, ["search", str(path), "how often do cats eat", "--retriever", "bm25", "--json"])
    assert plain.exit_code == 0, plain.output
    first = lambda output: json.loads(output)["passages"][0]["text"]  # noqa: E731
    assert "Kittens" in first(boosted.output) and "Adult cats" in first(plain.output)


def test_a_reference_to_a_missing_component_fails_when_built_in_code(host, tmp_path):
    host.register(toy_plugin, name="toy")
    host.register(_boost_plugin(), name="boost")
    (tmp_path / "knowledge").mkdir()
    manifest = fourfold.Manifest.model_validate(
        {
            "fourfold": 1,
            "domain": "code",
            "title": "Built in code",
            "knowledge": {"sources": [{"path": str(tmp_path / "knowledge")}]},
            "retrieval": {"use": "boost", "with": {"base": {"use": "nothing-here"}}},
        }
    )
    # Binding the manifest to the host (as loading a file does) finds it before anything is built.
    try:
        Domain(manifest, host)
    except fourfold.ManifestError as exc:
        assert "no retriever named 'nothing-here' is installed" in str(exc)
        assert "retrieval.with.base.use" in str(exc)
    else:
        raise AssertionError("a reference to a missing component was accepted")



class GeneratorRef(fourfold.ComponentRef):
    kind = "generator"


class DraftingStrategy(fourfold.PromptStrategy):
    """A prompt strategy that asks a generator of its own for a draft."""

    name = "drafting"
    uses_retrieval = False

    class Config(fourfold.ComponentConfig):
        drafter: GeneratorRef = GeneratorRef(use="toy-generator")

    def __init__(self, config, context):
        super().__init__(config, context)
        self.drafter = context.component(self.config.drafter)

    def build(self, question, passages, history):
        return fourfold.Prompt(messages=[fourfold.Message("user", question)], question=question)


def test_a_reference_to_another_kind_names_it_in_its_class(host, write_manifest, tmp_path):
    def register_prompt_strategies(register):
        register(DraftingStrategy)

    mod = types.ModuleType("fourfold_drafting")
    mod.FOURFOLD_PLUGIN_API = "1.1"
    mod.register_prompt_strategies = fourfold.hookimpl(register_prompt_strategies)
    host.register(toy_plugin, name="toy")
    host.register(mod, name="drafting")
    (tmp_path / "knowledge").mkdir(exist_ok=True)
    text = toy_plugin.TOY_MANIFEST.replace("prompt: {use: toy-prompt}", "prompt: {use: drafting, with: {drafter: {use: toy-generator, with: {reply: draft}}}}")
    path = write_manifest(text)
    domain = Domain.from_file(path, host)
    assert domain.prompt_strategy.drafter.name == "toy-generator"
    assert domain.prompt_strategy.drafter.config.reply == "draft"

    path.write_text(text.replace("reply: draft", "replies: draft"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    line = next(n for n, t in enumerate(path.read_text().splitlines(), 1) if "replies" in t)
    assert f"{path}:{line}: prompt.with.drafter.with.replies: unknown key 'replies' (expected one of: reply)" in result.output
