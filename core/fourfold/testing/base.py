"""What every contract class shares: building the component under test, checking its
``name`` and ``Config``, and failing with messages that say what to fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ValidationError

from fourfold.components import KIND_HOOKS, KINDS, NAME_PATTERN, Component, ComponentContext
from fourfold.settings import Settings

__all__ = ["ComponentContract", "ContractFailure", "expect", "call", "make_context", "build"]


class ContractFailure(AssertionError):
    """A component broke its kind's contract (raised when it raised)."""


def expect(condition: Any, message: str) -> None:
    """Fail the current test with ``message`` (no traceback into fourfold) unless ``condition``."""
    __tracebackhide__ = True
    if not condition:
        pytest.fail(message, pytrace=False)


def label(component: Any) -> str:
    cls = component if isinstance(component, type) else type(component)
    kind = getattr(cls, "kind", "") or "component"
    return f"{kind.replace('_', ' ')} '{getattr(cls, 'name', '') or cls.__name__}'"


def call(component: Any, method: str, *args: Any, fix: str, **kwargs: Any) -> Any:
    """Call ``component.method``; if it raises, fail naming the call and what to fix.

    The component's own traceback stays attached (``raise … from``), so the author sees
    where it went wrong.
    """
    __tracebackhide__ = True
    try:
        return getattr(component, method)(*args, **kwargs)
    except Exception as exc:
        shown = ", ".join([_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()])
        raise ContractFailure(f"{label(component)}: {method}({shown}) raised {type(exc).__name__}: {exc} — {fix}") from exc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def type_name(value: Any) -> str:
    return type(value).__name__


class ComponentContract:
    """Base of the contract classes: one per component kind.

    Subclass the kind's contract in a test module (its name must start with ``Test``)
    and say which component to check::

        class TestMyRetriever(fourfold.testing.RetrieverContract):
            component_class = MyRetriever
            config = {"top_k": 4}          # the manifest's ``with:`` block
            plugin = fourfold_my_retriever # optional: the module that registers it

    Every fixture below can be overridden by defining a fixture of the same name in the
    subclass, e.g. ``component_config`` when the config needs a temporary file.
    """

    kind: ClassVar[str] = ""
    component_class: ClassVar[type[Component] | None] = None
    config: ClassVar[dict[str, Any]] = {}
    plugin: ClassVar[Any] = None

    # -- fixtures ------------------------------------------------------------------

    @pytest.fixture
    def component_class_under_test(self) -> type[Component]:
        """The class checked; ``component_class`` unless overridden."""
        cls = type(self).component_class
        expect(cls is not None, f"{type(self).__name__}: set component_class = YourComponent on the test class")
        return cls  # type: ignore[return-value]

    @pytest.fixture
    def component_config(self) -> dict[str, Any]:
        """The ``with:`` block the component is built with; ``config`` unless overridden."""
        return dict(type(self).config)

    @pytest.fixture
    def embedder(self) -> Component:
        """The domain's embedder, as ``context.embedder()`` returns it: a
        :class:`~fourfold.testing.HashingEmbedder` unless overridden (e.g. with a real one)."""
        from fourfold.testing.corpus import HashingEmbedder

        return HashingEmbedder(HashingEmbedder.Config(), None)

    @pytest.fixture
    def component_context(self, tmp_path: Path, embedder) -> ComponentContext:
        """A context as a domain would give it: a manifest folder, a state folder, settings,
        and the ``embedder`` fixture as the domain's embedder."""
        return make_context(tmp_path, kind=self.kind, embedder=lambda: embedder)

    @pytest.fixture
    def component(self, component_class_under_test, component_config, component_context) -> Component:
        """The component, built as the host builds it: ``cls(Config(**with), context)``."""
        return build(component_class_under_test, component_config, component_context)

    # -- checks every kind shares --------------------------------------------------

    def test_is_a_component_of_this_kind(self, component_class_under_test):
        base = KINDS[self.kind]
        cls = component_class_under_test
        expect(
            isinstance(cls, type) and issubclass(cls, base),
            f"{cls!r} is not a subclass of fourfold.{base.__name__}: declare it as class {getattr(cls, '__name__', cls)}(fourfold.{base.__name__})",
        )
        missing = sorted(getattr(cls, "__abstractmethods__", ()))
        expect(not missing, f"{label(cls)} does not implement {', '.join(missing)}: the kind's base class requires them")

    def test_name_is_kebab_case(self, component_class_under_test):
        name = getattr(component_class_under_test, "name", "")
        expect(
            isinstance(name, str) and NAME_PATTERN.match(name),
            f"{component_class_under_test.__name__}.name = {name!r}: give it a short kebab-case name like 'my-{self.kind.replace('_', '-')}' — manifests select it with use: NAME",
        )

    def test_config_is_a_component_config(self, component_class_under_test):
        config_cls = component_class_under_test.Config
        expect(
            isinstance(config_cls, type) and issubclass(config_cls, BaseModel),
            f"{label(component_class_under_test)}: Config must be a pydantic model; subclass fourfold.ComponentConfig",
        )
        expect(
            config_cls.model_config.get("extra") == "forbid",
            f"{label(component_class_under_test)}: {config_cls.__name__} accepts unknown keys; subclass fourfold.ComponentConfig "
            "(extra='forbid') so a typo in a manifest's with: block is reported",
        )

    def test_config_accepts_the_example(self, component_class_under_test, component_config):
        try:
            component_class_under_test.Config.model_validate(component_config)
        except ValidationError as exc:
            pytest.fail(
                f"{label(component_class_under_test)}: Config rejected the test's config {component_config!r}: {exc}; "
                "fix the config given to the contract (config = {...}) or the Config model",
                pytrace=False,
            )

    def test_config_rejects_unknown_keys(self, component_class_under_test, component_config):
        bad = {**component_config, "no_such_option": 1}
        try:
            component_class_under_test.Config.model_validate(bad)
        except ValidationError as exc:
            expect(
                "no_such_option" in str(exc),
                f"{label(component_class_under_test)}: Config rejected an unknown key without naming it: {exc}",
            )
        else:
            pytest.fail(
                f"{label(component_class_under_test)}: Config accepted the unknown key 'no_such_option'; subclass "
                "fourfold.ComponentConfig (extra='forbid') so typos in a manifest are reported",
                pytrace=False,
            )

    def test_config_exports_a_json_schema(self, component_class_under_test):
        # The manifest's JSON Schema (fourfold schema) embeds every Config; it must export.
        try:
            schema = component_class_under_test.Config.model_json_schema()
            json.dumps(schema)
        except Exception as exc:  # noqa: BLE001 - any failure here breaks `fourfold schema`
            pytest.fail(
                f"{label(component_class_under_test)}: Config has no JSON Schema ({type(exc).__name__}: {exc}); "
                "use JSON-friendly field types (str, int, float, bool, lists, Literal, nested models)",
                pytrace=False,
            )

    def test_builds_from_its_config(self, component):
        expect(isinstance(component.config, BaseModel), f"{label(component)}: __init__ must keep the validated config as self.config")

    @pytest.fixture
    def plugin_under_test(self) -> Any:
        """The plugin module that registers the component; ``plugin`` unless overridden."""
        return type(self).plugin

    def test_plugin_registers_the_component(self, component_class_under_test, plugin_under_test):
        plugin = plugin_under_test
        if plugin is None:
            pytest.skip("set plugin = your_plugin_module on the test class to check its registration")
        from fourfold.plugins import PluginHost

        host = PluginHost(Settings(), load_entry_points=False)
        record = host.register(plugin, name="under-test")
        expect(record.status == "loaded", f"the plugin module {getattr(plugin, '__name__', plugin)} did not load: {record.error}")
        spec = host.get(self.kind, component_class_under_test.name)
        hook = KIND_HOOKS[self.kind]
        expect(
            spec is not None and spec.cls is component_class_under_test,
            f"the plugin module {getattr(plugin, '__name__', plugin)} does not register {component_class_under_test.__name__}: "
            f"add @fourfold.hookimpl def {hook}(register): register({component_class_under_test.__name__})",
        )


def make_context(tmp_path: Path, *, home: Path | None = None, kind: str | None = None, **services: Any) -> ComponentContext:
    """A :class:`fourfold.ComponentContext` rooted in ``tmp_path``: the manifest folder is
    ``tmp_path/domain``; ``home`` is the state dir (default ``tmp_path/home``; share one
    between tests to keep models converted once); ``kind`` the component's kind;
    ``services`` are factories (e.g. ``embedder=lambda: emb``).

    ``context.component(ref)`` builds the installed component ``ref`` names, with a
    context like this one, so a component that builds on another one can be tested."""
    base = tmp_path / "domain"
    base.mkdir(parents=True, exist_ok=True)
    context = ComponentContext(
        domain="contract",
        base_dir=base,
        state_dir=tmp_path / "state",
        settings=Settings(home=home or tmp_path / "home"),
        plugin="under-test",
        kind=kind,
        where="the contract's config",
    )
    built: dict[str, Component] = {}

    def component(ref: Any, ref_kind: str | None, where: str | None) -> Component:
        __tracebackhide__ = True
        from fourfold.plugins import get_host

        host = get_host()
        spec = host.get(ref_kind or "", ref.use) if ref_kind else None
        if spec is None:
            pytest.fail(f"context.component({ref!r}): {host.missing_component_message(ref_kind or 'component', ref.use)}", pytrace=False)
        key = json.dumps([ref_kind, ref.use, ref.with_], sort_keys=True, default=str)
        if key not in built:
            nested = make_context(tmp_path / f"{ref_kind}-{ref.use}", home=context.settings.home, kind=ref_kind, **services)
            nested.plugin = spec.plugin
            built[key] = build(spec.cls, dict(ref.with_), nested)
        return built[key]

    context._services.update({"resolve_model": lambda: context.path, "component": lambda: component, **services})
    return context


def build(cls: type[Component], config: dict[str, Any], context: ComponentContext) -> Component:
    """Build ``cls`` from a ``with:`` block as the host does, failing with what to fix."""
    __tracebackhide__ = True
    try:
        validated = cls.Config.model_validate(config)
    except ValidationError as exc:
        pytest.fail(f"{label(cls)}: Config rejected {config!r}: {exc}", pytrace=False)
    try:
        return cls(validated, context)
    except Exception as exc:
        raise ContractFailure(
            f"{label(cls)}: {cls.__name__}(config, context) raised {type(exc).__name__}: {exc} — "
            "a component must build from any config its Config accepts"
        ) from exc



def check_cost_profile(component: Any, work_type: type) -> None:
    """``cost_profile()`` (plugin API 1.4) returns a ``work_type`` that ``fourfold advise``
    sizes the component by, or None: it cannot be sized, and the advice says so. It must
    not raise (a failure there would hide the component from the advice)."""
    __tracebackhide__ = True
    if not hasattr(component, "cost_profile"):
        return  # written for plugin API < 1.4: the advice lists it as not sized
    work = call(component, "cost_profile", fix=f"return a fourfold.{work_type.__name__} describing one run, or None when it cannot be sized")
    expect(
        work is None or isinstance(work, work_type),
        f"{label(component)}: cost_profile() returned {type_name(work)}; return a fourfold.{work_type.__name__} or None",
    )
