"""Manifests: valid ones load; every kind of invalid one gives one clear line and exit 1."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from fourfold.cli import app
from fourfold.errors import ManifestError
from fourfold.manifest import load_manifest
from fourfold.manifest.yamlfile import MAX_MANIFEST_BYTES

from .toy_plugin import TOY_MANIFEST

runner = CliRunner()


def validate(path):
    result = runner.invoke(app, ["validate", str(path)])
    return result.exit_code, result.stdout, result.stderr


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_valid_manifest_loads_with_validated_component_configs(toy_host, toy_manifest):
    manifest = load_manifest(toy_manifest, toy_host)
    assert manifest.domain == "toy"
    assert manifest.retrieval.config.top_k == 3
    assert manifest.generation.config.reply == "hello"
    assert manifest.embedding.config.dimension == 16
    # one fine-tuning block given as a mapping becomes a one-item list
    assert [b.use for b in manifest.fine_tuning] == ["toy-tuner"]
    assert manifest.base_dir == toy_manifest.parent


def test_validate_cli_accepts_a_valid_manifest(toy_host, toy_manifest):
    code, out, err = validate(toy_manifest)
    assert code == 0, err
    assert "ok" in out and "domain 'toy'" in out


def _variant(toy_manifest, old: str, new: str):
    text = toy_manifest.read_text()
    assert old in text
    toy_manifest.write_text(text.replace(old, new))
    return toy_manifest


def _line_of(path, needle: str) -> int:
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


@pytest.mark.parametrize(
    ("old", "new", "needle", "expected"),
    [
        # unknown key, with the keys that are allowed
        ("  chunking:", "  chunkin:", "chunkin:", r"knowledge\.chunkin: unknown key 'chunkin' \(expected one of: sources, chunking"),
        # wrong type
        ("max_tokens: 64", "max_tokens: lots", "max_tokens", r"knowledge\.chunking\.max_tokens: .*integer.*\(found 'lots'\)"),
        # unknown component: lists what is available
        ("use: toy-retriever", "use: nosuch", "nosuch", r"retrieval\.use: no retriever named 'nosuch' is installed; available: .*toy-retriever"),
        # bad value inside a component's with: block
        ("top_k: 3", "top_k: 500", "top_k", r"retrieval\.with\.top_k: .*less than or equal to 100 \(found 500\)"),
        # unknown key inside with:
        ("reply: hello", "replay: hello", "replay", r"generation\.with\.replay: unknown key 'replay' \(expected one of: reply\)"),
        # a model-level rule
        ("overlap: 8", "overlap: 64", "chunking", r"knowledge\.chunking: overlap \(64\) must be smaller than max_tokens \(64\)"),
        # the domain name is used in URLs and paths
        ("domain: toy", "domain: Toy Domain", "domain:", r"domain: String should match pattern"),
    ],
)
def test_invalid_manifest_gives_one_line_with_file_line_and_field(toy_host, toy_manifest, old, new, needle, expected):
    path = _variant(toy_manifest, old, new)
    code, _, err = validate(path)
    lines = error_lines(err)
    assert code == 1
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {path}:{_line_of(path, needle)}: "), lines[0]
    assert re.search(expected, lines[0]), lines[0]


def test_yaml_syntax_error_names_the_line(toy_host, toy_manifest):
    path = _variant(toy_manifest, "title: Toy assistant", "title: [unclosed")
    code, _, err = validate(path)
    lines = error_lines(err)
    assert code == 1 and len(lines) == 1
    assert re.match(rf"error: {re.escape(str(path))}:\d+: YAML syntax error: ", lines[0]), lines[0]


def test_a_50_mb_file_is_refused_without_being_parsed(toy_host, tmp_path):
    path = tmp_path / "huge.yaml"
    with path.open("w") as f:
        f.write("fourfold: 1\ndomain: huge\ntitle: t\ndescription: |\n")
        line = "  " + "x" * 1022 + "\n"
        for _ in range(50 * 1024):
            f.write(line)
    assert path.stat().st_size > 50 * 1024 * 1024
    code, _, err = validate(path)
    lines = error_lines(err)
    assert code == 1 and len(lines) == 1
    assert f"{path}:1: the file is" in lines[0] and f"limited to {MAX_MANIFEST_BYTES:,} bytes" in lines[0]


def test_an_alias_bomb_is_refused(toy_host, tmp_path):
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        rows.append(f"{cur}: &{cur} [" + ", ".join(f"*{prev}" for _ in range(10)) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("fourfold: 1\ndomain: bomb\ntitle: t\n" + "\n".join(rows) + "\n")
    code, _, err = validate(path)
    lines = error_lines(err)
    assert code == 1 and len(lines) == 1
    assert "aliases expand to more than" in lines[0] and lines[0].startswith(f"error: {path}:")


def test_missing_required_keys_and_wrong_version(toy_host, write_manifest):
    path = write_manifest("fourfold: 2\ndomain: x\n")
    code, _, err = validate(path)
    lines = error_lines(err)
    assert code == 1
    assert any(re.search(r":1: fourfold: Input should be 1 \(found 2\)", l) for l in lines), lines
    assert any("title: is required but missing" in l for l in lines), lines


def test_relative_source_paths_resolve_against_the_manifest(toy_host, toy_manifest, tmp_path, monkeypatch):
    monkeypatch.chdir("/")
    assert load_manifest(toy_manifest, toy_host).domain == "toy"
    path = _variant(toy_manifest, "path: knowledge", "path: missing-folder")
    with pytest.raises(ManifestError) as info:
        load_manifest(path, toy_host)
    assert f"knowledge.sources[0].path: 'missing-folder' should be a folder; {tmp_path / 'missing-folder'} does not exist" in str(info.value)


def test_duplicate_keys_are_errors(toy_host, toy_manifest):
    path = _variant(toy_manifest, "title: Toy assistant", "title: Toy assistant\ntitle: Again")
    code, _, err = validate(path)
    assert code == 1
    assert "key 'title' appears twice" in err


def test_several_files_exit_1_when_any_is_invalid(toy_host, toy_manifest, write_manifest):
    bad = write_manifest("fourfold: 1\n", name="bad.yaml")
    result = runner.invoke(app, ["validate", str(toy_manifest), str(bad)])
    assert result.exit_code == 1
    assert "ok" in result.stdout and str(bad) in result.stderr


def test_manifest_text_is_never_executed(toy_host, write_manifest, tmp_path):
    marker = tmp_path / "pwned"
    path = write_manifest(f"fourfold: 1\ndomain: x\ntitle: !!python/object/apply:os.system ['touch {marker}']\n")
    code, _, err = validate(path)
    assert code == 1 and not marker.exists()
    assert "is not allowed in manifests" in err or "could not determine a constructor" in err


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("    - path: knowledge", "    - path: knowledge\n      prefix: ../../x",
         r":7: knowledge.sources\[0\].prefix: should be a plain relative path like 'handbook' or 'legal/contracts' \(found '../../x'\)"),
        ("    - path: knowledge", "    - path: knowledge\n      include: ['**/*.md', 'docs/*.txt']",
         r":7: knowledge.sources\[0\].include: no file in \S+/knowledge matches '\*\*/\*.md', 'docs/\*.txt'"),
        ("    - path: knowledge", "    - path: knowledge/a.toy",
         r":6: knowledge.sources\[0\].path: 'knowledge/a.toy' should be a folder; \S+/knowledge/a.toy is not a folder"),
    ],
    ids=["prefix-outside", "include-matches-nothing", "source-is-a-file"],
)
def test_validate_refuses_what_index_build_refuses_in_the_same_words(toy_host, toy_manifest, old, new, expected):
    _variant(toy_manifest, "retrieval: {use: toy-retriever, with: {top_k: 3}}", "retrieval: {use: hybrid}")  # one that indexes
    path = _variant(toy_manifest, old, new)
    code, _, err = validate(path)
    said = " ".join(err.split())
    assert code == 1 and re.search(re.escape(str(path)) + expected, said), said
    built = runner.invoke(app, ["index", "build", str(path)])
    assert built.exit_code == 1 and re.search(re.escape(str(path)) + expected, " ".join(built.stderr.split())), built.stderr


def test_validate_warns_about_an_include_pattern_that_matches_nothing(toy_host, toy_manifest):
    path = _variant(toy_manifest, "    - path: knowledge", "    - path: knowledge\n      include: ['*.toy', 'docs/*.txt']")
    code, out, err = validate(path)
    assert code == 0 and "ok" in out
    assert f"warning: {path}:7: knowledge.sources[0].include[1]: 'docs/*.txt' matches no file in" in " ".join(err.split())


@pytest.mark.parametrize("written, meant", [("off", "off"), ("no", "off"), ("false", "off"), ("'off'", "off"), ("on", "calibrated"), ("0.4", 0.4)])
def test_answerability_written_as_yaml_yes_or_no_means_on_or_off(toy_host, tmp_path, written, meant):
    # YAML reads a bare `off` as false; it must mean "off", not the threshold 0.0
    (tmp_path / "knowledge").mkdir()
    path = tmp_path / "m.yaml"
    path.write_text(TOY_MANIFEST.rstrip() + f"\ntrust: {{answerability: {written}}}\n", encoding="utf-8")
    assert load_manifest(path, toy_host).trust.answerability == meant
