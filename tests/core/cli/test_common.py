"""What every command shares: a manifest given once is found again by its domain's name."""

from __future__ import annotations

import pytest

from fourfold.cli.common import load_domain
from fourfold.errors import FourfoldError
from fourfold.domains import known_domains


def test_a_loaded_manifest_is_recorded_and_found_again_by_name(toy_host, toy_manifest):
    domain = load_domain(toy_manifest)
    assert domain.name == "toy"
    assert known_domains(domain.settings)["toy"] == domain.manifest.path
    again = load_domain("toy")
    assert again.manifest.path == domain.manifest.path


def test_an_unknown_name_lists_the_known_domains(toy_host, toy_manifest):
    load_domain(toy_manifest)
    with pytest.raises(FourfoldError, match=r"domain 'nosuch' is not known .*known: toy"):
        load_domain("nosuch")
