"""The plugin host: loads plugins from the ``fourfold`` entry-point group and collects
their components.

Builtin plugins are entry points of the ``fourfold`` distribution itself, so they load
exactly like third-party ones. Each load is isolated: a plugin that fails to import,
targets an incompatible plugin API, raises while registering or registers a duplicate
component is recorded with the reason and left out; every other plugin still loads.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import re
import time
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterable, Literal

import pluggy
from pydantic import BaseModel

from fourfold import hookspecs
from fourfold.components import KIND_HOOKS, KINDS, NAME_PATTERN, Component
from fourfold.errors import PluginError
from fourfold.settings import Settings, get_settings

__all__ = [
    "PLUGIN_API_VERSION",
    "ENTRY_POINT_GROUP",
    "hookimpl",
    "PluginHost",
    "PluginRecord",
    "ComponentSpec",
    "get_host",
]

log = logging.getLogger("fourfold.plugins")

ENTRY_POINT_GROUP = "fourfold"
PLUGIN_API_VERSION = "1.4"
"""The plugin API this fourfold offers. A plugin declares the version it targets as
``FOURFOLD_PLUGIN_API = "1.0"`` in its module; it loads when the major versions are
equal and its minor version is not newer than ours."""

hookimpl = pluggy.HookimplMarker("fourfold")

_BUILTIN_DISTRIBUTION = "fourfold"

Status = Literal["loaded", "failed", "disabled", "not-allowed"]


@dataclass
class PluginRecord:
    """What the host knows about one plugin, loaded or not."""

    name: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    module: str | None = None
    api_version: str | None = None
    status: Status = "loaded"
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    components: dict[str, list[str]] = field(default_factory=dict)
    traceback: str | None = None

    @property
    def label(self) -> str:
        """``"name" (distribution version)`` for messages."""
        dist = f" from {self.distribution} {self.version or ''}".rstrip() if self.distribution else ""
        return f"plugin '{self.name}'{dist}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "module": self.module,
            "api_version": self.api_version,
            "status": self.status,
            "error": self.error,
            "hooks": list(self.hooks),
            "components": {k: list(v) for k, v in self.components.items()},
            "traceback": self.traceback,
        }


@dataclass(frozen=True)
class ComponentSpec:
    """A registered component class, stamped with the plugin that registered it."""

    kind: str
    name: str
    cls: type[Component]
    plugin: str

    @property
    def config_model(self) -> type[BaseModel]:
        return self.cls.Config


class _Tracer:
    """Logs each hook call with the plugins that ran and how long it took."""

    def __init__(self) -> None:
        self._started: dict[int, float] = {}

    def before(self, hook_name: str, hook_impls: list[Any], kwargs: dict[str, Any]) -> None:
        self._started[id(kwargs)] = time.perf_counter()

    def after(self, outcome: Any, hook_name: str, hook_impls: list[Any], kwargs: dict[str, Any]) -> None:
        took = (time.perf_counter() - self._started.pop(id(kwargs), time.perf_counter())) * 1000
        names = ",".join(impl.plugin_name for impl in hook_impls) or "-"
        failed = " raised " + repr(outcome.exception) if getattr(outcome, "exception", None) else ""
        log.info("hook %s plugins=%s took=%.2fms%s", hook_name, names, took, failed)


def _api_compatible(declared: Any) -> tuple[bool, str]:
    text = str(declared).strip()
    try:
        parts = [int(p) for p in text.split(".")]
    except ValueError:
        return False, f"declares FOURFOLD_PLUGIN_API = {declared!r}, which is not a version like \"1.0\""
    major, minor = (parts + [0])[:2]
    ours_major, ours_minor = (int(p) for p in PLUGIN_API_VERSION.split("."))
    if major != ours_major or minor > ours_minor:
        return False, (
            f"targets plugin API {text}, but this fourfold offers {PLUGIN_API_VERSION} "
            f"(compatible: {ours_major}.0 to {PLUGIN_API_VERSION})"
        )
    return True, text


class PluginHost:
    """Loads plugins and holds their components.

    :param settings: process settings (allow/block lists, tracing).
    :param load_entry_points: False gives an empty host, for tests that register
        plugin objects by hand with :meth:`register`.
    """

    def __init__(self, settings: Settings | None = None, *, load_entry_points: bool = True):
        self.settings = settings or get_settings()
        self.pm = pluggy.PluginManager("fourfold")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginRecord] = {}
        self._components: dict[str, dict[str, ComponentSpec]] = {kind: {} for kind in KINDS}
        if self.settings.trace_plugins:
            tracer = _Tracer()
            self.pm.add_hookcall_monitoring(tracer.before, tracer.after)
        if load_entry_points:
            self.load_entry_points()

    # -- loading ---------------------------------------------------------------

    def load_entry_points(self) -> None:
        """Load every plugin in the ``fourfold`` entry-point group: builtins first."""
        eps = sorted(
            metadata.entry_points(group=ENTRY_POINT_GROUP),
            key=lambda ep: (not _is_builtin(ep), ep.name),
        )
        for ep in eps:
            dist = ep.dist.name if ep.dist else None
            record = PluginRecord(
                name=ep.name,
                distribution=dist,
                version=ep.dist.version if ep.dist else None,
                builtin=_is_builtin(ep),
                module=ep.value,
            )
            if record.name in self.plugins:
                record.status, record.error = "failed", (
                    f"{record.label}: entry point '{ep.name}' is also declared by "
                    f"{self.plugins[record.name].label}; rename one of them"
                )
                self.plugins[f"{record.name}@{dist}"] = record
                continue
            self.plugins[record.name] = record
            if not self._allowed(record):
                continue
            try:
                obj = ep.load()
            except BaseException as exc:  # noqa: BLE001 - a plugin must never stop start-up
                if isinstance(exc, KeyboardInterrupt):
                    raise
                record.traceback = "".join(traceback.format_exception(exc))
                self._fail(record, f"failed to load plugin \"{dist}[{ep.name}]\" due to {type(exc).__name__}: {exc}")
                continue
            self._add(obj, record)

    def register(self, plugin: Any, name: str, *, builtin: bool = False, distribution: str | None = None) -> PluginRecord:
        """Register a plugin object (a module or instance with hookimpls) by hand."""
        record = PluginRecord(name=name, distribution=distribution, builtin=builtin, module=getattr(plugin, "__name__", None))
        self.plugins[name] = record
        if self._allowed(record):
            self._add(plugin, record)
        return record

    def unregister(self, name: str) -> None:
        """Remove a plugin and its components (used by test fixtures)."""
        record = self.plugins.pop(name, None)
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        if record:
            for kind, names in record.components.items():
                for comp in names:
                    spec = self._components[kind].get(comp)
                    if spec and spec.plugin == name:
                        del self._components[kind][comp]

    def _allowed(self, record: PluginRecord) -> bool:
        names = {record.name, record.distribution} - {None}
        if names & self.settings.disabled_plugins:
            record.status, record.error = "disabled", "disabled by FOURFOLD_DISABLE_PLUGINS"
            return False
        allowed = self.settings.allowed_plugins
        if not record.builtin and allowed is not None and not names & allowed:
            record.status, record.error = "not-allowed", "not in FOURFOLD_LOAD_PLUGINS"
            return False
        return True

    def _fail(self, record: PluginRecord, message: str) -> None:
        record.status, record.error = "failed", message
        record.components = {}
        if record.traceback:
            log.info("%s\n%s", message, record.traceback.rstrip())
        else:
            log.info("%s", message)

    def _add(self, obj: Any, record: PluginRecord) -> None:
        declared = getattr(obj, "FOURFOLD_PLUGIN_API", None)
        if declared is None:
            self._fail(record, f"{record.label}: declares no FOURFOLD_PLUGIN_API; add FOURFOLD_PLUGIN_API = \"{PLUGIN_API_VERSION}\" to its module")
            return
        ok, detail = _api_compatible(declared)
        # Kept even when refused: `fourfold plugins` shows what each plugin targets.
        record.api_version = str(declared).strip()
        if not ok:
            self._fail(record, f"{record.label} {detail}")
            return
        unknown = _unknown_hooks(obj, set(self._hook_names()))
        if unknown:
            self._fail(record, f"{record.label}: {unknown}")
            return
        try:
            self.pm.register(obj, name=record.name)
        except Exception as exc:  # pluggy validates hookimpl names and signatures
            self._fail(record, f"{record.label}: {exc}")
            return
        record.hooks = sorted(hook for hook, _ in _impls_of(self.pm, record.name))
        try:
            collected = self._collect(record)
        except PluginError as exc:
            self.pm.unregister(name=record.name)
            self._fail(record, str(exc))
            return
        for spec in collected:
            self._components[spec.kind][spec.name] = spec
            record.components.setdefault(spec.kind, []).append(spec.name)
        record.status = "loaded"

    def _collect(self, record: PluginRecord) -> list[ComponentSpec]:
        """Call this plugin's registration hooks alone and check what it registers."""
        collected: list[ComponentSpec] = []
        for kind, base in KINDS.items():
            hook_name = KIND_HOOKS[kind]
            for hook, impl in _impls_of(self.pm, record.name):
                if hook != hook_name:
                    continue

                def register(cls: Any, _kind: str = kind, _base: type = base) -> None:
                    collected.append(self._check_component(record, _kind, _base, cls, collected))

                try:
                    impl.function(register=register)
                except PluginError:
                    raise
                except Exception as exc:
                    record.traceback = "".join(traceback.format_exception(exc))
                    raise PluginError(f"{record.label}: {hook_name}() raised {type(exc).__name__}: {exc}", plugin=record.name) from exc
        return collected

    def _check_component(
        self, record: PluginRecord, kind: str, base: type, cls: Any, pending: list[ComponentSpec]
    ) -> ComponentSpec:
        where = f"{record.label}: {KIND_HOOKS[kind]}"
        problem = component_problem(kind, cls)
        if problem:
            raise PluginError(f"{where}: {problem}", plugin=record.name)
        name = cls.name
        existing = self._components[kind].get(name)
        if existing is None:
            existing = next((s for s in pending if s.kind == kind and s.name == name), None)
        if existing is not None:
            other = self.plugins.get(existing.plugin)
            other_label = other.label if other else f"plugin '{existing.plugin}'"
            raise PluginError(
                f"{record.label} registers {kind.replace('_', ' ')} '{name}', which {other_label} already registers; "
                "component names must be unique",
                plugin=record.name,
            )
        return ComponentSpec(kind=kind, name=name, cls=cls, plugin=record.name)

    def _hook_names(self) -> list[str]:
        """Names of the hooks fourfold specifies (what a plugin may implement)."""
        return [name for name in dir(self.pm.hook) if getattr(getattr(self.pm.hook, name), "spec", None) is not None]

    # -- queries -----------------------------------------------------------------

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def components(self, kind: str) -> dict[str, ComponentSpec]:
        """Registered components of ``kind`` by name."""
        return dict(self._components[kind])

    def get(self, kind: str, name: str) -> ComponentSpec | None:
        return self._components[kind].get(name)

    def failed(self) -> list[PluginRecord]:
        return [p for p in self.plugins.values() if p.status == "failed"]

    def plugin_records(self, *, include_builtins: bool = True) -> list[PluginRecord]:
        records = sorted(self.plugins.values(), key=lambda p: (not p.builtin, p.name))
        return [r for r in records if include_builtins or not r.builtin]

    def missing_component_message(self, kind: str, name: str) -> str:
        """Explain why ``kind`` ``name`` is not available: what is, and what failed."""
        label = kind.replace("_", " ")
        available = ", ".join(sorted(self._components[kind])) or "none"
        message = f"no {label} named '{name}' is installed; available: {available}"
        suspects = [p for p in self.plugins.values() if p.status in ("failed", "disabled", "not-allowed")]
        likely = [p for p in suspects if name in (p.name, p.distribution) or name.replace("-", "_") in (p.module or "")]
        for p in likely or [p for p in suspects if p.status == "failed"]:
            message += f"; {p.label} is {p.status}: {p.error}"
        return message


def component_problem(kind: str, cls: Any) -> str | None:
    """What keeps ``cls`` from being a component of ``kind``, said as what to fix, or
    None when it is one."""
    base = KINDS[kind]
    if not (isinstance(cls, type) and issubclass(cls, base)):
        shown = getattr(cls, "__name__", None) or repr(cls)
        what = "an instance" if not isinstance(cls, type) else f"class {shown}"
        return f"registered {what}, which is not a subclass of fourfold.{base.__name__}; register the class itself, declared as class {shown}(fourfold.{base.__name__})"
    name = getattr(cls, "name", "")
    if not name:
        return f"{cls.__name__} has no name; add name = '{_kebab(cls.__name__)}' (the name a manifest's use: selects)"
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        return f"{cls.__name__}.name = {name!r} is not a kebab-case name; use lower-case words joined by '-', like '{_kebab(str(name))}'"
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        hint = "fourfold.RetrieverConfig" if kind == "retriever" else "fourfold.ComponentConfig"
        return (
            f"{cls.__name__}.Config is {_describe(config)}, not a pydantic model; declare it as "
            f"class Config({hint}) with one field per with: key"
        )
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        wanted = "; ".join(f"def {m}{_signature_of(base, m)}" for m in missing)
        return f"{cls.__name__} does not implement {', '.join(missing)} that fourfold.{base.__name__} requires; add {wanted}"
    return None


def _describe(value: Any) -> str:
    if isinstance(value, type):
        return f"the class {value.__name__}"
    return f"{type(value).__name__} {value!r}"[:80]


def _kebab(text: str) -> str:
    words = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", text.replace("_", " ")) or ["my-component"]
    return "-".join(w.lower() for w in words)


def _signature_of(base: type, method: str) -> str:
    attr = inspect.getattr_static(base, method, None)
    fn = attr.fget if isinstance(attr, property) else attr
    try:
        full = inspect.signature(fn)
    except (TypeError, ValueError):
        return "(self, ...)"
    # Without annotations: what an author types, short enough for one line.
    plain = [p.replace(annotation=inspect.Parameter.empty) for p in full.parameters.values()]
    sig = str(full.replace(parameters=plain, return_annotation=inspect.Signature.empty))
    prefix = "@property " if isinstance(attr, property) else ""
    return sig if not prefix else f"{sig} (a @property)"


def _unknown_hooks(obj: Any, known: set[str]) -> str | None:
    """A message naming functions of the plugin that look like hook implementations but
    match no hook (a misspelt name, a missing @fourfold.hookimpl), with the closest
    correct name; None when there are none."""
    problems = []
    module_name = getattr(obj, "__name__", None) if inspect.ismodule(obj) else None
    for attr in dir(obj):
        if attr.startswith("_"):
            continue
        try:
            value = getattr(obj, attr)
        except Exception:  # noqa: BLE001 - a property that raises is not a hook
            continue
        marked = callable(value) and hasattr(value, "fourfold_impl")
        if marked:
            options = getattr(value, "fourfold_impl") or {}
            if attr in known or options.get("optionalhook") or options.get("specname") in known:
                continue
            close = difflib.get_close_matches(attr, sorted(known), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else f"the hooks are: {', '.join(sorted(known))}"
            problems.append(f"{attr} is marked @fourfold.hookimpl but no such hook exists; {hint}")
        elif attr.startswith("register_") and inspect.isfunction(value) and (module_name is None or value.__module__ == module_name):
            if attr in known:
                problems.append(f"{attr} is not marked @fourfold.hookimpl, so fourfold never calls it; decorate it with @fourfold.hookimpl")
            else:
                close = difflib.get_close_matches(attr, sorted(k for k in known if k.startswith("register_")), n=1, cutoff=0.6)
                hint = f"did you mean @fourfold.hookimpl def {close[0]}?" if close else "registration hooks are: " + ", ".join(sorted(k for k in known if k.startswith("register_")))
                problems.append(f"{attr} is not a fourfold hook; {hint}")
    return "; ".join(problems) or None


def _impls_of(pm: pluggy.PluginManager, name: str) -> Iterable[tuple[str, Any]]:
    """``(hook name, hookimpl)`` for each hook the plugin implements."""
    plugin = pm.get_plugin(name)
    if plugin is None:
        return []
    return [
        (caller.name, impl)
        for caller in pm.get_hookcallers(plugin) or []
        for impl in caller.get_hookimpls()
        if impl.plugin is plugin
    ]


def _is_builtin(ep: metadata.EntryPoint) -> bool:
    return bool(ep.dist and ep.dist.name == _BUILTIN_DISTRIBUTION)


_host: PluginHost | None = None


def get_host(*, fresh: bool = False) -> PluginHost:
    """The process-wide plugin host (built on first use)."""
    global _host
    if _host is None or fresh:
        _host = PluginHost(get_settings(fresh=fresh))
    return _host
