"""Incremental refreshes end exactly where a clean build of the same folder ends.

Hypothesis drives random sequences of edits to a knowledge folder (add, edit, delete,
rename, duplicate), refreshing after each step; some refreshes are interrupted by an
exception at a random stage (the retry must repair everything). After every step the
published version must equal a clean build of the folder in a fresh state dir.
"""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fourfold.index import IndexLayout, refresh

from .conftest import load_domain, make_manifest, snapshot, write_files

pytestmark = pytest.mark.slow

SENTENCES = [
    "Diabetes raises blood sugar.",
    "Insulin lowers blood sugar.",
    "Asthma narrows the airways.",
    "A flu vaccine is given every year.",
    "The tenant pays rent monthly.",
    "Confidential information stays secret.",
    "Measles spreads through the air.",
    "The merger needs regulatory approval.",
]
NAMES = ["a.md", "b.txt", "c.md", "sub/d.txt", "sub/e.md"]
# Each refresh stage, plus "pointer": dying after the version is complete but before
# CURRENT names it.
STAGES = ["scan", "hash", "load", "embed", "write", "optimize", "validate", "publish", "pointer"]

content = st.lists(st.sampled_from(SENTENCES), min_size=1, max_size=3).map(lambda s: "# Note\n\n" + " ".join(s) + "\n")
step = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(NAMES), content),
    st.tuples(st.just("delete"), st.sampled_from(NAMES), st.none()),
    st.tuples(st.just("rename"), st.sampled_from(NAMES), st.sampled_from(NAMES)),
    st.tuples(st.just("duplicate"), st.sampled_from(NAMES), st.sampled_from(NAMES)),
)
crash = st.one_of(st.none(), st.sampled_from(STAGES))


class Interrupt(Exception):
    pass


class InterruptAt:
    """A progress sink that raises when ``stage`` begins (a stand-in for a crash there)."""

    def __init__(self, stage):
        self.stage = stage

    def start(self, stage, total=None):
        if stage == self.stage:
            raise Interrupt(stage)

    def advance(self, n=1):
        pass


def _interrupted(self, name):
    raise Interrupt("before CURRENT")


def apply(kb, op, a, b):
    src = kb / a
    if op == "write":
        write_files(kb, {a: b})
    elif op == "delete" and src.exists():
        src.unlink()
    elif op in ("rename", "duplicate") and src.exists() and a != b:
        dst = kb / b
        dst.parent.mkdir(parents=True, exist_ok=True)
        if op == "rename":
            os.replace(src, dst)
        else:
            shutil.copyfile(src, dst)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(step, crash), min_size=1, max_size=4))
def test_incremental_refresh_equals_a_clean_build(tmp_path_factory, steps):
    root = tmp_path_factory.mktemp("prop")
    kb = root / "kb"
    write_files(kb, {"a.md": "# Note\n\n" + SENTENCES[0] + "\n"})
    domain = load_domain(make_manifest(root, kb, min_chunks=0), home=root / "home")
    refresh(domain)
    for n, ((op, a, b), crash_at) in enumerate(steps):
        apply(kb, op, a, b)
        if crash_at == "pointer":
            original = IndexLayout.write_current
            IndexLayout.write_current = _interrupted  # type: ignore[method-assign]
            try:
                refresh(domain)
            except Interrupt:
                pass
            finally:
                IndexLayout.write_current = original  # type: ignore[method-assign]
        elif crash_at is not None:
            try:
                refresh(domain, InterruptAt(crash_at))
            except Interrupt:
                pass
        refresh(domain)
        clean = load_domain(make_manifest(root, kb, min_chunks=0, name=f"clean{n}.yaml"), home=root / f"clean{n}")
        refresh(clean)
        assert snapshot(domain) == snapshot(clean), f"after {op} {a} {b} (interrupted at {crash_at})"
        layout = IndexLayout.for_domain(domain)
        assert all(layout.is_complete(v) for v in layout.version_names()), "no unfinished version left behind"
