"""Builtin plugins the checkout declares but the installed metadata does not list yet.

The project is installed in editable mode, so its code is the checkout's while its
entry points are those of the last ``make install``. A builtin plugin added since then
is still loaded in tests, from the checkout's own ``pyproject.toml``; after the next
install this adds nothing.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

GROUP = "fourfold"


def add_declared_builtins(pyproject: Path) -> list[str]:
    """Make ``importlib.metadata.entry_points`` list the builtin plugins ``pyproject``
    declares and the installed ``fourfold`` distribution lacks; their names."""
    declared = tomllib.loads(pyproject.read_text())["project"]["entry-points"][GROUP]
    dist = metadata.distribution("fourfold")
    installed = {ep.name for ep in dist.entry_points if ep.group == GROUP}
    missing = [metadata.EntryPoint(name, value, GROUP)._for(dist) for name, value in declared.items() if name not in installed]
    if not missing:
        return []
    original = metadata.entry_points

    def entry_points(**params):
        found = original(**params)
        if params.get("group") != GROUP:
            return found
        return metadata.EntryPoints([*found, *missing])

    metadata.entry_points = entry_points
    return [ep.name for ep in missing]
