"""The ``qdrant_server_url`` fixture: a Qdrant server for tests that need one over HTTP.

With ``FOURFOLD_TEST_QDRANT_URL`` set (``http://127.0.0.1:6333``) tests talk to that real
Qdrant; otherwise to one stand-in process (:mod:`tests.helpers.qdrant_standin`) started
for the session. Either way each test's collections and aliases are deleted after it, so
a test may create what it likes; naming them uniquely keeps a non-empty server safe.
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest
from qdrant_client import QdrantClient
from qdrant_client.http import models as m

from .qdrant_standin import running_standin

QDRANT_URL_VARIABLE = "FOURFOLD_TEST_QDRANT_URL"


@pytest.fixture(scope="session")
def _qdrant_server(tmp_path_factory) -> Iterator[str]:
    url = os.environ.get(QDRANT_URL_VARIABLE)
    if url:
        yield url.rstrip("/")
        return
    with running_standin(tmp_path_factory.mktemp("qdrant-standin")) as url:
        yield url


@pytest.fixture
def qdrant_server_url(_qdrant_server: str) -> Iterator[str]:
    """The URL of a Qdrant server (real, or the stand-in); what the test adds is removed after it."""
    client = QdrantClient(url=_qdrant_server, prefer_grpc=False, check_compatibility=False)
    collections_before = {c.name for c in client.get_collections().collections}
    aliases_before = {a.alias_name for a in client.get_aliases().aliases}
    try:
        yield _qdrant_server
        new_aliases = [a.alias_name for a in client.get_aliases().aliases if a.alias_name not in aliases_before]
        if new_aliases:
            client.update_collection_aliases(
                [m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=name)) for name in new_aliases]
            )
        for collection in client.get_collections().collections:
            if collection.name not in collections_before:
                client.delete_collection(collection.name)
    finally:
        client.close()
