"""Deprecations in the plugin API are announced with FourfoldDeprecationWarning, at the
plugin's line: calls through warn_deprecated, hooks through pluggy's warn_on_impl."""

from __future__ import annotations

import types
import warnings

import pluggy
import pytest

import fourfold
from fourfold.deprecation import deprecated_hook_warning, warn_deprecated
from fourfold.plugins import PluginHost
from fourfold.settings import Settings


def old_helper():
    warn_deprecated("fourfold.old_helper()", since="1.1", removed_in="2.0", instead="fourfold.new_helper()")


def test_a_deprecated_call_warns_at_the_callers_line():
    with pytest.warns(fourfold.FourfoldDeprecationWarning) as caught:
        old_helper()  # the plugin's line
    warning = caught[0]
    assert str(warning.message) == (
        "fourfold.old_helper() is deprecated since plugin API 1.1 and will be removed in plugin API 2.0; use fourfold.new_helper() instead"
    )
    assert warning.filename == __file__
    assert issubclass(fourfold.FourfoldDeprecationWarning, DeprecationWarning)


def test_implementing_a_deprecated_hook_warns_when_the_plugin_registers():
    class DeprecatedSpecs:
        @pluggy.HookspecMarker("fourfold")(warn_on_impl=deprecated_hook_warning("old_hook", since="1.1", removed_in="2.0", instead="new_hook"))
        def old_hook(self, domain):
            """An old hook."""

    host = PluginHost(Settings(), load_entry_points=False)
    host.pm.add_hookspecs(DeprecatedSpecs)
    plugin = types.ModuleType("fourfold_old")
    plugin.FOURFOLD_PLUGIN_API = "1.0"

    def old_hook(domain):
        return None

    plugin.old_hook = fourfold.hookimpl(old_hook)
    with pytest.warns(fourfold.FourfoldDeprecationWarning, match="the hook old_hook is deprecated since plugin API 1.1 .* use new_hook instead"):
        record = host.register(plugin, name="old")
    assert record.status == "loaded"  # deprecated still works


def test_deprecation_warnings_can_be_made_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", fourfold.FourfoldDeprecationWarning)
        with pytest.raises(fourfold.FourfoldDeprecationWarning):
            old_helper()


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [("fourfold.runtime", "fourfold.answering", "answer"), ("fourfold.registry", "fourfold.domains", "known_domains")],
)
def test_a_renamed_module_still_works_and_warns_where_it_is_used(old, new, name):
    import importlib

    module = importlib.import_module(old)
    with pytest.warns(fourfold.FourfoldDeprecationWarning, match=rf"{old}\.{name} is deprecated .* use {new}\.{name} instead") as caught:
        value = getattr(module, name)  # this line
    assert value is getattr(importlib.import_module(new), name)
    assert caught[0].filename == __file__
    assert set(module.__all__) == set(importlib.import_module(new).__all__)


def test_importing_a_name_from_a_renamed_module_warns_at_the_import():
    with pytest.warns(fourfold.FourfoldDeprecationWarning, match="fourfold.runtime.stream_answer is deprecated") as caught:
        from fourfold.runtime import stream_answer
    from fourfold.answering import stream_answer as current

    assert stream_answer is current
    assert caught[0].filename == __file__
