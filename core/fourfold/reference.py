"""The reference page of the data types plugins exchange with fourfold, written from the
code itself: ``python -m fourfold.reference > docs/plugin_types.md``. A test keeps the
page equal to what this module writes, so the page cannot drift from the types."""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from typing import Any

from pydantic import BaseModel

from fourfold import components, sizing, types

__all__ = ["REFERENCED", "render_reference"]

REFERENCED: list[type] = [
    types.SourceFile,
    types.SourceDocument,
    types.Section,
    types.LoadedDocument,
    types.Chunk,
    types.Passage,
    types.SearchFilters,
    types.Message,
    types.Prompt,
    types.GenerationLimits,
    types.Citation,
    types.Answer,
    types.TrainingResult,
    components.ComponentContext,
    components.ComponentRef,
    sizing.ModelShape,
    sizing.TrainingWork,
    sizing.EmbeddingWork,
    sizing.GenerationWork,
]
"""The types the page describes, in its order."""

_HEADER = """\
# Plugin data types

The data a plugin's components receive and return, and how fourfold builds a component.
This page is generated from the code (`python -m fourfold.reference >
docs/plugin_types.md`) and a test checks that it is current. Every type here is
exported by `fourfold`. Hooks are in [plugin_hooks.md](plugin_hooks.md), the guide is
[writing_plugins.md](writing_plugins.md), versions are in [plugin_api.md](plugin_api.md).

## Building a component

fourfold builds every component the same way, from the manifest block that names it:

```python
component = cls(cls.Config.model_validate(with_block), context)
```

`with_block` is the block's `with:` mapping (`{}` when absent), validated against the
class's pydantic `Config` (errors name the manifest file, line and path, e.g.
`retrieval.with.top_k`); `context` is a `fourfold.ComponentContext` for the domain. A
component that overrides `__init__(self, config, context)` calls
`super().__init__(config, context)` first; it then has `self.config` and
`self.context`. Equal kind, name and configuration share one instance per domain.

A component builds on another registered component with a `fourfold.ComponentRef`
field in its `Config` and `self.context.component(self.config.FIELD)`; the nested
`with:` is validated against *that* component's `Config`, and nothing of the outer
component's configuration reaches it.

At registration fourfold refuses a class that leaves an abstract method of its kind's
base class unimplemented, has no kebab-case `name`, or whose `Config` is not a pydantic
model, naming what to add.
"""


def render_reference() -> str:
    """The whole page, as Markdown."""
    parts = [_HEADER]
    for cls in REFERENCED:
        parts.append(_render(cls))
    return "\n".join(parts).rstrip() + "\n"


def _render(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    summary, ivars = _split_doc(doc)
    lines = [f"## `fourfold.{cls.__name__}`", ""]
    if summary:
        lines += [_markdown(summary), ""]
    rows = _fields(cls)
    if rows:
        lines += ["| field | type | default | meaning |", "|---|---|---|---|"]
        for name, type_text, default, description in rows:
            meaning = ivars.pop(name, "") or description
            lines.append(f"| `{name}` | `{_cell(type_text)}` | {_cell(default)} | {_cell(_markdown(meaning))} |")
        lines.append("")
    for name, text in ivars.items():  # class attributes (``:cvar:``)
        lines += [f"Class attribute `{name}`: {_markdown(text)}", ""]
    methods = _methods(cls)
    if methods:
        lines += ["| method | what it does |", "|---|---|"]
        for signature, text in methods:
            lines.append(f"| `{_cell(signature)}` | {_cell(_markdown(text))} |")
        lines.append("")
    return "\n".join(lines)


def _split_doc(doc: str) -> tuple[str, dict[str, str]]:
    """The docstring's prose, and its ``:ivar name:`` texts by name."""
    prose: list[str] = []
    ivars: dict[str, str] = {}
    current: list[str] | None = None
    for line in doc.splitlines():
        match = re.match(r"^:(?:ivar|cvar) ([\w, ]+):\s*(.*)$", line)
        if match:
            current = [match.group(2)]
            for name in match.group(1).split(","):
                ivars[name.strip()] = current  # type: ignore[assignment]
            continue
        if line.startswith(".. ") or line.startswith(":"):
            current = None
            continue
        if current is not None and line.startswith(" "):
            current.append(line.strip())
            continue
        current = None
        prose.append(line)
    text = "\n".join(prose).strip()
    return text, {k: " ".join(v) for k, v in ivars.items()}  # type: ignore[arg-type]


def _fields(cls: type) -> list[tuple[str, str, str, str]]:
    if dataclasses.is_dataclass(cls):
        out = []
        for f in dataclasses.fields(cls):
            if f.name.startswith("_"):
                continue
            if f.default is not dataclasses.MISSING:
                default = f"`{f.default!r}`"
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                default = f"`{f.default_factory()!r}`"  # type: ignore[misc]
            else:
                default = "required"
            out.append((f.name, str(f.type).strip("'"), default, ""))
        return out
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        out = []
        for name, info in cls.model_fields.items():
            default = "required" if info.is_required() else f"`{info.get_default(call_default_factory=True)!r}`"
            annotation = getattr(info.annotation, "__name__", None) or str(info.annotation)
            out.append((info.alias or name, annotation.replace("typing.", ""), default, info.description or ""))
        return out
    return []


def _methods(cls: type) -> list[tuple[str, str]]:
    out = []
    for name, value in vars(cls).items():
        if name.startswith("_") or not (inspect.isfunction(value) or isinstance(value, property)):
            continue
        fn = value.fget if isinstance(value, property) else value
        first = (inspect.getdoc(fn) or "").split("\n\n")[0].replace("\n", " ")
        if isinstance(value, property):
            signature = name
        else:
            params = list(inspect.signature(fn).parameters.values())[1:]
            signature = f"{name}({', '.join(_param(p) for p in params)})"
        out.append((signature, first))
    return out


def _param(p: inspect.Parameter) -> str:
    text = p.name
    if p.default is not inspect.Parameter.empty:
        text += f"={p.default!r}"
    return text


def _markdown(text: str) -> str:
    """reST roles and literals as Markdown; ``::`` code blocks fenced."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text).replace("``", "`")
    out: list[str] = []
    in_code = False
    for line in text.splitlines():
        if in_code and line and not line.startswith("    "):
            out.append("```")
            in_code = False
        if line.endswith("::") and not in_code:
            out += [line[:-1], "", "```python"]
            in_code = True
            continue
        if in_code and not line and (not out or out[-1] == "```python"):
            continue
        out.append(line[4:] if in_code else line)
    if in_code:
        while out and not out[-1]:
            out.pop()
        out.append("```")
    return "\n".join(out)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


if __name__ == "__main__":
    sys.stdout.write(render_reference())
