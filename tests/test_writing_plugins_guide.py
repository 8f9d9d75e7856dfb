"""docs/writing_plugins.md works as written: every fenced block runs, in order, as a
reader would run it, in an empty folder with a throw-away virtualenv.

Each block is preceded by a marker saying what to do with it:

- ``<!-- run -->``: run as a bash script in the current folder (``cd`` carries over);
- ``<!-- file: PATH -->``: write the block to PATH;
- ``<!-- check: PATH -->``: PATH (written by an earlier command) holds exactly this;
- ``<!-- tree -->``: each line's first word is a file that exists;
- ``<!-- output -->``: each line appears in the output of the previous ``run`` block;
- ``<!-- contract-message -->``: what the contract tests print when the last retriever
  written ignores ``top_k`` (checked by running them on such a variant).

The virtualenv sees the project's packages (fourfold, pytest, build, twine) through a
``.pth`` file and gets the plugins the guide installs; pip works offline, building
with the setuptools already installed; ``twine upload`` goes to a local index that
records what it receives.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path

import pytest

from .conftest import REPO_ROOT

GUIDE = REPO_ROOT / "docs" / "writing_plugins.md"
BLOCK = re.compile(r"^<!-- ([\w-]+)(?::\s*(.+?))? -->\n```[\w-]*\n(.*?)^```\n", re.M | re.S)
FENCE = re.compile(r"^```[\w-]*\n.*?^```\n", re.M | re.S)


def blocks() -> list[tuple[str, str | None, str]]:
    text = GUIDE.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), m.group(3)) for m in BLOCK.finditer(text)]


def test_every_code_block_has_a_marker():
    text = GUIDE.read_text(encoding="utf-8")
    marked = {m.start(3) for m in BLOCK.finditer(text)}
    fences = list(FENCE.finditer(text))
    unmarked = [text[f.start() : f.start() + 60] for f in fences if text.index("\n", f.start()) + 1 not in marked]
    assert not unmarked, f"code blocks without a <!-- run/file/check/tree/output --> marker: {unmarked}"
    assert {kind for kind, _, _ in blocks()} <= {"run", "file", "check", "tree", "output", "contract-message"}


def test_the_guide_links_the_references():
    text = GUIDE.read_text(encoding="utf-8")
    assert "(plugin_hooks.md)" in text and "(plugin_api.md)" in text


# -- the environment a reader has -----------------------------------------------------------


def _wheel_of_installed(dist_name: str, folder: Path) -> Path:
    """A wheel of an installed pure-Python distribution, made from its files, so pip can
    build plugins offline (build isolation installs setuptools from it)."""
    dist = metadata.distribution(dist_name)
    wheel = folder / f"{dist.metadata['Name']}-{dist.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in dist.files or []:
            path = Path(dist.locate_file(file))
            if path.is_file() and "__pycache__" not in file.parts and not str(file).startswith(".."):
                zf.write(path, str(file))
    return wheel


class _Index(BaseHTTPRequestHandler):
    """A package index's upload endpoint that keeps what it receives."""

    received: list[bytes] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def reader_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("guide")
    work = root / "work"
    work.mkdir()
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    project_site = Path(sysconfig.get_path("purelib"))
    # The folders on this run's PYTHONPATH come first, so the fourfold under test is the
    # one the reader's commands run.
    first = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    (site / "_project_packages.pth").write_text(
        f"import site, sys; site.addsitedir({str(project_site)!r}); sys.path[:0] = {first!r}\n"
    )
    bin_dir = venv / "bin"
    launcher = bin_dir / "fourfold"
    launcher.write_text(f"#!{bin_dir / 'python'}\nimport sys\nfrom fourfold.cli import main\nsys.exit(main())\n")
    launcher.chmod(0o755)
    wheels = root / "wheels"
    wheels.mkdir()
    _wheel_of_installed("setuptools", wheels)

    _Index.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_", "FOURFOLD_"))}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        HOME=str(root / "home"),
        FOURFOLD_HOME=str(root / "state"),
        HF_HUB_OFFLINE="1",
        COLUMNS="200",
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheels),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        TWINE_REPOSITORY_URL=f"http://127.0.0.1:{server.server_address[1]}/legacy/",
        TWINE_USERNAME="__token__",
        TWINE_PASSWORD="pypi-guide-test",
        TWINE_NON_INTERACTIVE="1",
    )
    yield {"work": work, "env": env, "venv": venv}
    server.shutdown()


def _run(script: str, cwd: Path, env: dict) -> tuple[Path, str]:
    marker = cwd / ".." / ".cwd"
    full = f"set -euo pipefail\ncd {str(cwd)!r}\n{script}\npwd > {str(marker.resolve())!r}\n"
    result = subprocess.run(["bash", "-c", full], env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"this block failed:\n{script}\n--- output ---\n{output[-6000:]}"
    return Path(marker.resolve().read_text().strip()), output


@pytest.mark.slow
def test_the_guide_runs_as_written(reader_env):
    cwd: Path = reader_env["work"]
    env = reader_env["env"]
    last_output = ""
    last_retriever: tuple[Path, str] | None = None
    for kind, arg, body in blocks():
        if kind == "run":
            cwd, last_output = _run(body, cwd, env)
        elif kind == "file":
            path = cwd / arg
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body, encoding="utf-8")
            if "fourfold.Retriever" in body:
                last_retriever = (path, body)
        elif kind == "check":
            assert (cwd / arg).read_text(encoding="utf-8") == body, f"{arg} is not what the guide shows"
        elif kind == "tree":
            for line in body.splitlines():
                assert (cwd / line.split()[0]).is_file(), f"the guide lists {line.split()[0]}, which new-plugin did not write"
        elif kind == "output":
            squashed = " ".join(last_output.split())
            for line in body.splitlines():
                assert " ".join(line.split()) in squashed, f"expected {line!r} in the output:\n{last_output[-4000:]}"
        elif kind == "contract-message":
            assert last_retriever is not None
            path, code = last_retriever
            assert "return found[:top_k]" in code
            path.write_text(code.replace("return found[:top_k]", "return found"), encoding="utf-8")
            try:
                result = subprocess.run(
                    [str(reader_env["venv"] / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                    cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                )
            finally:
                path.write_text(code, encoding="utf-8")
            assert body.strip() in result.stdout, result.stdout[-4000:]
    # the last twine upload reached the index with the wheel and the sdist
    uploads = b"".join(_Index.received)
    assert b"fourfold_keyword_search-0.1.0-py3-none-any.whl" in uploads
    assert b"fourfold_keyword_search-0.1.0.tar.gz" in uploads
    assert shutil.which("fourfold", path=env["PATH"]).startswith(str(reader_env["venv"]))
