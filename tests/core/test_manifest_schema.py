"""``fourfold schema`` and ``fourfold validate`` agree: every manifest the project ships
(and every complete one in the docs) passes both, and each kind of mistake fails both,
so an editor never flags a valid manifest nor passes a broken one of these kinds."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from fourfold.cli import app

from ..conftest import REPO_ROOT

runner = CliRunner()

SHIPPED = sorted((REPO_ROOT / "deploy" / "manifests").glob("*.yaml"))
DOC_FILES = sorted((REPO_ROOT / "docs").glob("*.md")) + [REPO_ROOT / "README.md"]

VALID = """
fourfold: 1
domain: notes
title: Notes
knowledge:
  sources:
    - path: knowledge
  chunking: {max_tokens: 128, overlap: 16}
training:
  use: causal-lm
  artifact: notes-base
fine_tuning:
  use: lora
  artifact: notes-lora
  with: {base: "artifact:notes-base"}
embedding:
  with: {}
retrieval: {use: hybrid, with: {top_k: 4}}
generation: {use: extractive}
trust: {answerability: 0.4, unsupported: mark, verifier: "artifact:notes-verifier", verifier_mode: both}
"""


@pytest.fixture
def exported_schema(host, tmp_path) -> jsonschema.Draft202012Validator:
    """The schema as ``fourfold schema -o`` writes it for the installed plugins."""
    out = tmp_path / "fourfold.schema.json"
    result = runner.invoke(app, ["schema", "--output", str(out)])
    assert result.exit_code == 0, result.stderr
    schema = json.loads(out.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _schema_problems(validator: jsonschema.Draft202012Validator, data: object) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message[:300]}" for e in validator.iter_errors(data)]


def _validate(path: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["validate", str(path)])
    return result.exit_code, result.stderr


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_manifest_passes_the_exported_schema_and_validate(exported_schema, path):
    code, err = _validate(path)
    assert code == 0, err
    problems = _schema_problems(exported_schema, yaml.safe_load(path.read_text()))
    assert not problems, f"{path.name} validates but the exported schema rejects it:\n" + "\n".join(problems)


def _doc_manifests() -> list[tuple[str, str]]:
    """Complete manifests in the docs: YAML blocks that start with ``fourfold: 1``."""
    found = []
    for doc in DOC_FILES:
        text = doc.read_text()
        for match in re.finditer(r"```ya?ml\n(.*?)```", text, re.S):
            if re.search(r"^fourfold: 1$", match.group(1), re.M):
                line = text[: match.start()].count("\n") + 1
                found.append((f"{doc.name}:{line}", match.group(1)))
    return found


def test_manifests_in_the_docs_that_validate_pass_the_exported_schema(exported_schema, tmp_path):
    # The guides' examples name plugins that the reader writes along the way; those do not
    # validate here and are left out. The reference's examples must both validate and pass.
    checked = []
    for where, text in _doc_manifests():
        folder = tmp_path / where.replace(":", "-")
        folder.mkdir()
        data = yaml.safe_load(text)
        for source in (data.get("knowledge") or {}).get("sources", []):
            (folder / source["path"]).mkdir(parents=True, exist_ok=True)
        path = folder / "domain.yaml"
        path.write_text(text)
        if _validate(path)[0] != 0:
            continue
        problems = _schema_problems(exported_schema, data)
        assert not problems, f"{where} validates but the exported schema rejects it:\n" + "\n".join(problems)
        checked.append(where)
    assert any(where.startswith("manifest.md") for where in checked), "no manifest in docs/manifest.md validates"


@pytest.fixture
def valid_manifest(tmp_path) -> Path:
    (tmp_path / "knowledge").mkdir()
    (tmp_path / "knowledge" / "a.md").write_text("# A\n\nsome text\n")
    path = tmp_path / "domain.yaml"
    path.write_text(textwrap.dedent(VALID).lstrip())
    return path


def test_the_base_of_the_mistakes_below_is_valid_to_both(exported_schema, valid_manifest):
    code, err = _validate(valid_manifest)
    assert code == 0, err
    assert _schema_problems(exported_schema, yaml.safe_load(valid_manifest.read_text())) == []


MISTAKES = {
    "unknown top-level key": ("title: Notes", "title: Notes\ncolour: blue"),
    "unknown key in a block": ("generation: {use: extractive}", "generation: {use: extractive, colour: blue}"),
    "unknown key in a component's with": ("top_k: 4", "top_kk: 4"),
    "wrong type": ("max_tokens: 128", "max_tokens: lots"),
    "wrong type of a block": ("generation: {use: extractive}", "generation: extractive"),
    "value out of range": ("top_k: 4", "top_k: 5000"),
    "missing required field": ("title: Notes\n", ""),
    "missing use where there is no default": ("  use: causal-lm\n", ""),
    "wrong manifest version": ("fourfold: 1", "fourfold: 2"),
    "bad enum value": ("unsupported: mark", "unsupported: hide"),
    "bad enum value or number": ("answerability: 0.4", "answerability: sometimes"),
    "bad verifier mode": ("verifier_mode: both", "verifier_mode: always"),
    "domain name not matching its pattern": ("domain: notes", "domain: My Notes"),
    "artifact name not matching its pattern": ("artifact: notes-base", "artifact: Notes_Base"),
    "unknown component": ("use: hybrid", "use: nosuch"),
    "empty source list": ("  sources:\n    - path: knowledge\n", "  sources: []\n"),
}


@pytest.mark.parametrize(("old", "new"), MISTAKES.values(), ids=MISTAKES.keys())
def test_each_kind_of_mistake_is_rejected_by_the_schema_and_by_validate(exported_schema, valid_manifest, old, new):
    text = valid_manifest.read_text()
    assert old in text
    valid_manifest.write_text(text.replace(old, new, 1))
    code, err = _validate(valid_manifest)
    assert code == 1 and "error:" in err, err
    assert _schema_problems(exported_schema, yaml.safe_load(valid_manifest.read_text())), "the schema accepts it"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("verifier_mode: both", "verifier_mode: always", "'rules', 'verifier' or 'both'"),
        ('verifier: "artifact:notes-verifier", ', "", "needs trust.verifier"),
    ],
    ids=["unknown mode", "mode without a verifier"],
)
def test_validate_names_the_verifier_mode_setting(valid_manifest, old, new, expected):
    text = valid_manifest.read_text()
    assert old in text
    valid_manifest.write_text(text.replace(old, new, 1))
    code, err = _validate(valid_manifest)
    assert code == 1 and "trust.verifier_mode" in err and expected in err, err
