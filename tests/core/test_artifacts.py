"""The artifact store: only finished runs look like artifacts, names are checked, unknown
names are answered with the known ones, and two producers of one artifact exclude each
other."""

from __future__ import annotations

import json

import pytest

from fourfold.artifacts import ArtifactStore
from fourfold.errors import ArtifactNotFound, FourfoldError


def _finished_run(store: ArtifactStore, name: str, fingerprint: str = "ab" * 32):
    staging = store.staging_dir(name, fingerprint)
    (staging / "model").mkdir()
    (staging / "model" / "config.json").write_text("{}")
    return staging


def test_a_staging_folder_is_not_an_artifact_until_committed():
    store = ArtifactStore()
    staging = _finished_run(store, "clinic-lora")
    assert store.list() == [] and store.find("clinic-lora") is None

    artifact = store.commit("clinic-lora", staging, {"kind": "causal-lm", "fingerprint": "ab" * 32, "metrics": {"after": {"x": 1}}})
    assert not staging.exists()
    assert [a.name for a in store.list()] == ["clinic-lora"]
    assert artifact.model_dir == store.root / "clinic-lora" / "model"
    assert store.model_dir("clinic-lora") == artifact.model_dir
    info = json.loads((artifact.path / "artifact.json").read_text())
    assert info["name"] == "clinic-lora" and info["kind"] == "causal-lm" and info["fingerprint"] == "ab" * 32


def test_a_folder_without_artifact_json_is_ignored():
    store = ArtifactStore()
    (store.root / "half-written" / "model").mkdir(parents=True)
    assert store.list() == []
    with pytest.raises(ArtifactNotFound):
        store.get("half-written")


def test_committing_again_replaces_the_artifact_whole():
    store = ArtifactStore()
    store.commit("clinic-lora", _finished_run(store, "clinic-lora", "aa" * 32), {"kind": "causal-lm", "fingerprint": "aa" * 32})
    staging = _finished_run(store, "clinic-lora", "bb" * 32)
    (staging / "model" / "new.bin").write_text("x")
    store.commit("clinic-lora", staging, {"kind": "causal-lm", "fingerprint": "bb" * 32})
    artifact = store.get("clinic-lora")
    assert artifact.fingerprint == "bb" * 32 and (artifact.model_dir / "new.bin").is_file()
    assert [p.name for p in store.root.iterdir() if not p.name.startswith(".")] == ["clinic-lora"]


def test_a_run_that_saved_nothing_cannot_be_committed():
    store = ArtifactStore()
    staging = store.staging_dir("clinic-lora", "cc" * 32)
    with pytest.raises(FourfoldError, match="no 'model' folder"):
        store.commit("clinic-lora", staging, {})
    assert store.list() == []


def test_unknown_artifacts_are_answered_with_the_known_ones():
    store = ArtifactStore()
    with pytest.raises(ArtifactNotFound, match="known artifacts: none yet"):
        store.get("medical-lora")
    store.commit("clinic-lora", _finished_run(store, "clinic-lora"), {"kind": "causal-lm"})
    with pytest.raises(ArtifactNotFound, match=r"no artifact named 'medical-lora' .*known artifacts: clinic-lora"):
        store.model_dir("medical-lora")


@pytest.mark.parametrize("name", ["Clinic", "../etc", "a b", "", "-x"])
def test_artifact_names_are_checked(name):
    with pytest.raises(FourfoldError, match="not a valid artifact name"):
        ArtifactStore().staging_dir(name, "dd" * 32)


def test_one_producer_per_artifact_at_a_time():
    store = ArtifactStore()
    with store.lock("clinic-lora"):
        with pytest.raises(FourfoldError, match="being produced by another process"):
            with ArtifactStore().lock("clinic-lora"):
                pass
        with store.lock("clinic-other"):  # other names are independent
            pass
    with store.lock("clinic-lora"):  # released
        pass


def test_manifests_resolve_artifact_references(write_manifest, host):
    from fourfold.domain import Domain

    store = ArtifactStore()
    store.commit("clinic-lora", _finished_run(store, "clinic-lora"), {"kind": "causal-lm"})
    path = write_manifest(
        """
        fourfold: 1
        domain: clinic
        title: Clinic
        """
    )
    domain = Domain.from_file(path, host=host)
    assert domain.resolve_model("artifact:clinic-lora") == store.root / "clinic-lora" / "model"
    with pytest.raises(ArtifactNotFound, match="clinic-lora"):
        domain.resolve_model("artifact:clinic-full")
    assert domain.resolve_model("models/mine") == path.parent / "models" / "mine"
