"""``fourfold new-plugin --kind source``: the scaffolded source installs, passes
fourfold.testing's source contract unchanged, and feeds a domain's index from a manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fourfold.cli import app

pytestmark = pytest.mark.slow  # pip install and three fourfold processes


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("scaffold-source")
    result = CliRunner().invoke(app, ["new-plugin", "zip-docs", "--kind", "source", "--dir", str(root)])
    assert result.exit_code == 0, result.output
    site = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(site), str(root / "fourfold-zip-docs")],
        check=True, capture_output=True, timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "HF_HUB_OFFLINE": "1", "FOURFOLD_HOME": str(root / "home")}
    return {"root": root, "env": env}


def _run(scaffolded, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=scaffolded["env"], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_scaffold_writes_a_source_and_its_contract_tests(scaffolded):
    project = scaffolded["root"] / "fourfold-zip-docs"
    component = (project / "src/fourfold_zip_docs/source.py").read_text()
    assert "class ZipDocsSource(fourfold.Source):" in component and 'name = "zip-docs"' in component
    assert "@fourfold.hookimpl\ndef register_sources(register):" in (project / "src/fourfold_zip_docs/__init__.py").read_text()
    assert "class TestZipDocsSource(SourceContract):" in (project / "tests/test_source.py").read_text()
    assert "{use: zip-docs, with: {archive: docs.zip}}" in (project / "README.md").read_text()


def test_the_generated_contract_tests_pass_unchanged(scaffolded):
    project = scaffolded["root"] / "fourfold-zip-docs"
    result = _run(scaffolded, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(project / "tests"), cwd=project)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "16 passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]  # the contract's 15 and its own


def test_a_manifest_indexes_through_the_scaffolded_source(scaffolded):
    folder = scaffolded["root"] / "domain"
    folder.mkdir()
    with zipfile.ZipFile(folder / "docs.zip", "w") as archive:
        archive.writestr("cats.md", "# Cats\n\nAdult cats should be fed twice a day.\n")
        archive.writestr("dogs.md", "# Dogs\n\nDogs need a walk at least twice daily.\n")
    manifest = folder / "domain.yaml"
    manifest.write_text(
        textwrap.dedent(
            """
            fourfold: 1
            domain: zipped
            title: Zipped knowledge
            knowledge:
              sources: [{use: zip-docs, with: {archive: docs.zip}}]
            retrieval: {use: bm25}
            """
        ).lstrip()
    )
    listed = _run(scaffolded, "-m", "fourfold", "plugins", "--json")
    record = next(r for r in json.loads(listed.stdout) if r["name"] == "zip-docs")
    assert record["status"] == "loaded" and record["components"] == {"source": ["zip-docs"]}
    built = _run(scaffolded, "-m", "fourfold", "index", "build", str(manifest))
    assert built.returncode == 0, built.stdout + built.stderr
    found = _run(scaffolded, "-m", "fourfold", "search", str(manifest), "how often do dogs need a walk", "--json")
    assert found.returncode == 0, found.stderr
    passages = json.loads(found.stdout)
    passages = passages.get("passages", passages) if isinstance(passages, dict) else passages
    assert passages[0]["source"] == "dogs.md"
