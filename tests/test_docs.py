"""The docs describe what exists: every hook has a heading that is its exact signature."""

from __future__ import annotations

import inspect
import re

import pytest

from fourfold import hookspecs

from .conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"


def _hookspecs():
    return [
        (name, fn)
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "fourfold_spec")
    ]


def _signature(name, fn) -> str:
    return f"{name}({', '.join(inspect.signature(fn).parameters)})"


def test_there_are_hooks_to_document():
    names = {name for name, _ in _hookspecs()}
    assert {"register_trainers", "register_retrievers", "answer_question", "index_published"} <= names


@pytest.mark.parametrize(("name", "fn"), _hookspecs(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_hook_has_a_heading_with_its_exact_signature(name, fn):
    text = (DOCS / "plugin_hooks.md").read_text()
    headings = re.findall(r"^#{2,4} (.+)$", text, re.M)
    assert f"`{_signature(name, fn)}`" in headings or _signature(name, fn) in headings, (
        f"docs/plugin_hooks.md has no heading '{_signature(name, fn)}'"
    )


def test_no_documented_hook_is_missing_from_the_specs():
    text = (DOCS / "plugin_hooks.md").read_text()
    documented = set(re.findall(r"^#{2,4} `?(\w+)\(", text, re.M))
    assert documented == {name for name, _ in _hookspecs()}


def test_every_hookspec_is_typed_and_documented():
    for name, fn in _hookspecs():
        doc = inspect.getdoc(fn) or ""
        assert "versionadded" in doc, name
        for param in inspect.signature(fn).parameters.values():
            assert param.annotation is not inspect.Parameter.empty, f"{name}({param.name}) has no type"
            assert f":param {param.name}:" in doc, f"{name} does not document {param.name}"


def test_the_data_types_page_is_generated_from_the_code():
    from fourfold.reference import render_reference

    page = (DOCS / "plugin_types.md").read_text()
    assert page == render_reference(), "docs/plugin_types.md is stale: run 'python -m fourfold.reference > docs/plugin_types.md'"


def test_every_data_type_field_is_explained():
    from fourfold.reference import REFERENCED, render_reference

    import fourfold

    for cls in REFERENCED:
        assert getattr(fourfold, cls.__name__) is cls, f"{cls.__name__} is on the page but not exported by fourfold"
    missing = [line.split("|")[1].strip() for line in render_reference().splitlines() if line.startswith("| `") and line.rstrip().endswith("|  |")]
    assert not missing, f"fields without a meaning (add :ivar NAME: to the class docstring): {missing}"


def test_the_component_build_signature_is_documented():
    page = (DOCS / "plugin_types.md").read_text()
    assert "component = cls(cls.Config.model_validate(with_block), context)" in page
    guide = (DOCS / "writing_plugins.md").read_text()
    assert "(plugin_types.md)" in guide
