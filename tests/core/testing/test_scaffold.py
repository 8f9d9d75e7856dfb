"""``fourfold new-plugin``: a scaffolded plugin of every kind installs, passes its own
contract tests unchanged, and works from a manifest through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

import fourfold
from fourfold.cli import app
from fourfold.scaffold import KIND_OPTIONS, plugin_spec
from fourfold.testing import make_tiny_causal_lm

runner = CliRunner()


# -- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Keyword_Search", "--kind", "retriever"], "plugin name 'Keyword_Search' is not kebab-case"),
        (["Keyword_Search", "--kind", "retriever"], "try 'keyword-search'"),
        (["keyword", "--kind", "retreiver"], "unknown kind 'retreiver' (did you mean 'retriever'?); choose one of: trainer, fine-tuner, prompt-strategy, retriever, loader, embedder, generator"),
        (["fourfold-keyword", "--kind", "retriever"], "give the plugin's own name without the prefix: 'keyword'"),
        (["minilm", "--kind", "embedder"], "an embedder named 'minilm' is already registered by plugin 'minilm'"),
    ],
)
def test_bad_names_and_kinds_are_explained(args, message, tmp_path, host):
    result = runner.invoke(app, ["new-plugin", *args, "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split()), result.output
    assert not any(tmp_path.iterdir())


def test_an_existing_project_is_not_overwritten(tmp_path):
    assert runner.invoke(app, ["new-plugin", "keyword", "--kind", "retriever", "--dir", str(tmp_path)]).exit_code == 0
    again = runner.invoke(app, ["new-plugin", "keyword", "--kind", "prompt-strategy", "--dir", str(tmp_path)])
    assert again.exit_code == 1
    assert "fourfold-keyword already exists and is not empty" in again.output


def test_names_become_distribution_package_and_class():
    spec = plugin_spec("keyword-search", "retriever")
    assert (spec.dist, spec.package, spec.class_name) == ("fourfold-keyword-search", "fourfold_keyword_search", "KeywordSearchRetriever")
    assert plugin_spec("step-back", "prompt_strategy").class_name == "StepBackStrategy"
    assert plugin_spec("tiny-lm-trainer", "trainer").class_name == "TinyLmTrainer"


def test_the_project_layout(tmp_path):
    result = runner.invoke(app, ["new-plugin", "keyword", "--kind", "retriever", "--dir", str(tmp_path)])
    root = tmp_path / "fourfold-keyword"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [".gitignore", "README.md", "pyproject.toml", "src/fourfold_keyword/__init__.py", "src/fourfold_keyword/retriever.py", "tests/test_retriever.py"]
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points.fourfold]\nkeyword = "fourfold_keyword"' in pyproject
    assert 'FOURFOLD_PLUGIN_API = "1.4"' in (root / "src/fourfold_keyword/__init__.py").read_text()
    readme = (root / "README.md").read_text()
    for command in ("python -m pip install -e '.[test]'", "python -m pytest", "python -m build", "python -m twine upload dist/*", "retrieval: {use: keyword"):
        assert command in readme
    assert "python -m pip install -e '.[test]'" in " ".join(result.output.split())


# -- every kind, installed and used ---------------------------------------------------------

NAMES = {kind: f"demo-{option}" for option, kind in KIND_OPTIONS.items()}


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory) -> dict:
    """One scaffolded plugin per kind, installed together (one pip call) into a target
    folder that subprocesses put on their PYTHONPATH; the project venv is untouched."""
    root = tmp_path_factory.mktemp("scaffolds")
    for kind, name in NAMES.items():
        result = runner.invoke(app, ["new-plugin", name, "--kind", kind, "--dir", str(root)])
        assert result.exit_code == 0, result.output
    site = root / "site"
    projects = [str(root / f"fourfold-{name}") for name in NAMES.values()]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(site), *projects],
        check=True, capture_output=True, timeout=300,
    )
    # The checkout's own path stays on PYTHONPATH, so the fourfold under test runs.
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "FOURFOLD_HOME": str(root / "home")}
    return {"root": root, "site": site, "env": env}


@pytest.mark.slow
def test_generated_tests_pass_unchanged(scaffolded):
    # One pytest run over the seven projects' test folders: same tests, one interpreter
    # start-up instead of seven.
    folders = [str(scaffolded["root"] / f"fourfold-{name}" / "tests") for name in NAMES.values()]
    report = scaffolded["root"] / "junit.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *folders],
        cwd=scaffolded["root"], env=scaffolded["env"], capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed: dict[str, int] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        if not list(case):  # no <failure>, <error> or <skipped> child
            module = next(p for p in case.get("classname", "").split(".") if p.startswith("test_"))
            passed[module] = passed.get(module, 0) + 1
    for kind in NAMES:
        assert passed.get(f"test_{kind}", 0) >= 8, (kind, passed)


def _fourfold(scaffolded, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fourfold", *args], env=scaffolded["env"], capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_plugins_lists_each_with_the_api_it_targets(scaffolded):
    listed = _fourfold(scaffolded, "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    records = {r["name"]: r for r in json.loads(listed.stdout)}
    for kind, name in NAMES.items():
        record = records[name]
        assert record["status"] == "loaded", record
        assert record["builtin"] is False
        assert record["distribution"] == f"fourfold-{name}" and record["version"] == "0.1.0"
        assert record["api_version"] == fourfold.PLUGIN_API_VERSION
        assert record["components"] == {kind: [name]}
    table = _fourfold(scaffolded, "plugins")
    assert "demo-retriever" in table.stdout and fourfold.PLUGIN_API_VERSION in table.stdout


@pytest.fixture(scope="module")
def manifest(scaffolded) -> Path:
    """A domain that uses a scaffolded component for every block."""
    folder = scaffolded["root"] / "domain"
    (folder / "knowledge").mkdir(parents=True)
    (folder / "knowledge" / "cats.md").write_text("# Cats\n\nAdult cats should be fed twice a day.\n")
    (folder / "knowledge" / "dogs.demoloader").write_text("# Dogs\n\n## Walking\n\nDogs need a walk at least twice daily.\n")
    (folder / "finetune.jsonl").write_text(json.dumps({"text": "Cats eat twice a day."}) + "\n")
    base = make_tiny_causal_lm(folder / "tiny-lm")
    path = folder / "domain.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            fourfold: 1
            domain: demo
            title: Demo assistant
            knowledge:
              sources: [{{path: knowledge, include: ["**/*.md", "**/*.demoloader"]}}]
            embedding: {{use: demo-embedder, with: {{dimension: 64}}}}
            training: {{use: demo-trainer, with: {{steps: 2, width: 32, layers: 1, vocab_size: 300, context: 32}}}}
            fine_tuning: {{use: demo-fine-tuner, with: {{base: {base}, data: finetune.jsonl, steps: 1}}}}
            prompt: {{use: demo-prompt-strategy}}
            retrieval: {{use: demo-retriever, with: {{top_k: 2}}}}
            generation: {{use: demo-generator, with: {{sentences: 1}}}}
            """
        ).lstrip()
    )
    return path


@pytest.mark.slow
def test_a_manifest_using_every_scaffolded_component_validates(scaffolded, manifest):
    result = _fourfold(scaffolded, "validate", str(manifest))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout and "retriever=demo-retriever" in result.stdout
    bad = manifest.with_name("bad.yaml")
    bad.write_text(manifest.read_text().replace("top_k: 2", "top_k: 2, fuzzy: true"))
    result = _fourfold(scaffolded, "validate", str(bad))
    assert result.returncode == 1
    assert "retrieval.with.fuzzy" in result.stderr


@pytest.fixture(scope="module")
def indexed(scaffolded, manifest) -> Path:
    result = _fourfold(scaffolded, "index", "build", str(manifest))
    assert result.returncode == 0, result.stdout + result.stderr
    return manifest


@pytest.mark.slow
def test_the_scaffolded_components_index_search_and_answer_through_the_cli(scaffolded, indexed):
    # The loader read the .demoloader file, the embedder chunked it, the retriever's store
    # holds it and searching finds it.
    found = _fourfold(scaffolded, "search", str(indexed), "how often do dogs need a walk", "--json")
    assert found.returncode == 0, found.stderr
    passages = json.loads(found.stdout)
    passages = passages.get("passages", passages) if isinstance(passages, dict) else passages
    assert passages and passages[0]["source"] == "dogs.demoloader", found.stdout
    answered = _fourfold(scaffolded, "ask", str(indexed), "How often should adult cats be fed?", "--json")
    assert answered.returncode == 0, answered.stderr
    answer = json.loads(answered.stdout)
    assert "twice a day" in answer["text"]
    assert answer["citations"] and answer["citations"][0]["source"] == "cats.md"


@pytest.mark.slow
def test_the_scaffolded_trainer_and_fine_tuner_run_through_the_cli(scaffolded, manifest):
    trained = _fourfold(scaffolded, "train", str(manifest))
    assert trained.returncode == 0, trained.stdout + trained.stderr
    tuned = _fourfold(scaffolded, "fine-tune", str(manifest))
    assert tuned.returncode == 0, tuned.stdout + tuned.stderr
    listed = _fourfold(scaffolded, "artifacts", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "demo-trainer" in listed.stdout and "demo-fine-tuner" in listed.stdout


@pytest.mark.slow
def test_the_scaffolded_components_answer_through_the_api(scaffolded, indexed):
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "scaffold-token-0123456789abcdef"
    env = {**scaffolded["env"], "DEMO_TOKENS": token}
    served = indexed.with_name("served.yaml")
    served.write_text(indexed.read_text() + "serve: {tokens_env: DEMO_TOKENS}\n")
    server = subprocess.Popen(
        [sys.executable, "-m", "fourfold", "serve", str(served), "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.5)
        response = httpx.post(
            f"{url}/v1/domains/demo/ask", json={"question": "How often should adult cats be fed?"},
            headers={"Authorization": f"Bearer {token}"}, timeout=120,
        )
        assert response.status_code == 200, response.text
        assert "twice a day" in response.json()["text"]
        plugins = httpx.get(f"{url}/v1/plugins", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert plugins.status_code == 200, plugins.text
        assert "demo-retriever" in plugins.text
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
