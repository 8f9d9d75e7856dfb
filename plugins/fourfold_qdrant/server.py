"""The distributed engine: a Qdrant server (or cluster) through qdrant-client.

Each index version is a collection named ``fourfold-<domain>-<version>``; publishing
points the alias ``fourfold-<domain>`` at it in one atomic alias operation, so clients
that query the alias switch at once. fourfold's own readers query the version's
collection by name (the ``CURRENT`` pointer in the state dir says which), which keeps
search and catalog consistent during a swap.

A new version starts as a server-side copy of the base collection (scrolled and
upserted in batches) plus the delta. ``FOURFOLD_QDRANT_URL`` may also be ``:memory:``
or ``local:PATH`` for qdrant-client's local mode, which speaks the same API; that is
how this engine is tested without a server.
"""

from __future__ import annotations

import json
import logging
import threading
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

import fourfold

from fourfold_qdrant.sparse import SparseEncoder, SparseSettings
from fourfold_qdrant.store import DENSE, PAYLOAD_INDEXES, SPARSE, Probe, QdrantReader, passage_from

__all__ = ["ServerStore", "ServerWriter", "ServerReader", "client_for", "COLLECTION_PREFIX"]

log = logging.getLogger("fourfold.qdrant")

COLLECTION_PREFIX = "fourfold-"
_COPY_BATCH = 512
_STORE_INFO = "fourfold-store.json"

_clients: dict[tuple[str, str | None], Any] = {}
_clients_lock = threading.Lock()


def client_for(url: str, api_key: str | None):
    """One client per server and key in a process (local mode allows only one per folder)."""
    from qdrant_client import QdrantClient

    key = (url, api_key)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            if url == ":memory:":
                client = QdrantClient(location=":memory:")
            elif url.startswith("local:"):
                client = QdrantClient(path=url[len("local:") :])
            else:
                client = QdrantClient(url=url, api_key=api_key, timeout=60)
            _clients[key] = client
        return client


class ServerStore(fourfold.IndexStore):
    """Index versions as collections on a Qdrant server.

    :param url: server URL (``http(s)://host:6333``), ``:memory:`` or ``local:PATH``.
    :param domain: the domain's name; part of collection and alias names.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None,
        domain: str,
        dimension: int,
        sparse: SparseSettings,
        *,
        hnsw_ef: int | None = None,
        exact: bool = False,
    ):
        self.url = url
        self.api_key = api_key
        self.domain = domain
        self.dimension = dimension
        self.sparse = sparse
        self.hnsw_ef = hnsw_ef
        self.exact = exact
        self.encoder = SparseEncoder(sparse)

    @property
    def client(self):
        return client_for(self.url, self.api_key)

    @property
    def store_id(self) -> str:
        return f"qdrant-server/{self.dimension}d/bm25-{self.sparse.tag}"

    @property
    def alias(self) -> str:
        return f"{COLLECTION_PREFIX}{self.domain}"

    def collection(self, location: Path) -> str:
        """The collection of the version whose store folder is ``location``."""
        return f"{COLLECTION_PREFIX}{self.domain}-{Path(location).parent.name}"

    def create_version(self, location: Path, base: Path | None) -> "ServerWriter":
        from qdrant_client import models as m

        location = Path(location)
        location.mkdir(parents=True, exist_ok=True)
        name = self.collection(location)
        client = self.client
        if client.collection_exists(name):  # left over by a refresh that died
            client.delete_collection(name)
        client.create_collection(
            name,
            vectors_config={DENSE: m.VectorParams(size=self.dimension, distance=m.Distance.COSINE)},
            sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
        )
        with warnings.catch_warnings():  # local mode warns that payload indexes do nothing there
            warnings.simplefilter("ignore")
            client.create_payload_index(name, "source", m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD))
            for field in PAYLOAD_INDEXES[1:]:
                client.create_payload_index(name, field, m.PayloadSchemaType.KEYWORD)
        (location / _STORE_INFO).write_text(
            json.dumps({"engine": "qdrant-server", "collection": name, "store_id": self.store_id}, indent=1), encoding="utf-8"
        )
        writer = ServerWriter(self, name)
        if base is not None:
            writer.copy_from(self.collection(Path(base)))
        return writer

    def open_version(self, location: Path) -> "ServerReader":
        name = self.collection(location)
        if not self.client.collection_exists(name):
            raise FileNotFoundError(f"Qdrant collection {name} at {self.url}")
        return ServerReader(self, name)

    def publish(self, location: Path) -> None:
        from qdrant_client import models as m

        name = self.collection(location)
        ops: list[Any] = []
        if any(a.alias_name == self.alias for a in self.client.get_aliases().aliases):
            ops.append(m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=self.alias)))
        ops.append(m.CreateAliasOperation(create_alias=m.CreateAlias(collection_name=name, alias_name=self.alias)))
        self.client.update_collection_aliases(ops)  # one request: the swap is atomic

    def delete_version(self, location: Path) -> None:
        name = self.collection(location)
        if self.client.collection_exists(name):
            self.client.delete_collection(name)


class ServerWriter(fourfold.VersionWriter):
    def __init__(self, store: ServerStore, collection: str):
        self.store = store
        self.collection = collection

    def copy_from(self, source: str) -> None:
        from qdrant_client import models as m

        client = self.store.client
        offset = None
        while True:
            records, offset = client.scroll(source, limit=_COPY_BATCH, offset=offset, with_payload=True, with_vectors=True)
            if records:
                client.upsert(
                    self.collection,
                    [m.PointStruct(id=r.id, vector=r.vector, payload=r.payload) for r in records],
                    wait=True,
                )
            if offset is None:
                break

    def upsert(self, chunks: Sequence[fourfold.Chunk], vectors: "np.ndarray | None") -> None:
        from qdrant_client import models as m

        if vectors is None:
            raise ValueError("the qdrant stores need dense vectors for every chunk")
        points = []
        for chunk, vector in zip(chunks, vectors):
            indices, values = self.store.encoder.document(chunk)
            points.append(
                m.PointStruct(
                    id=chunk.id,
                    vector={DENSE: np.asarray(vector, dtype=np.float32).tolist(), SPARSE: m.SparseVector(indices=indices, values=values)},
                    payload=chunk.payload(),
                )
            )
        if points:
            self.store.client.upsert(self.collection, points, wait=True)

    def delete(self, chunk_ids: Sequence[str]) -> None:
        from qdrant_client import models as m

        if chunk_ids:
            self.store.client.delete(self.collection, m.PointIdsList(points=list(chunk_ids)), wait=True)

    def count(self) -> int:
        return int(self.store.client.count(self.collection, exact=True).count)

    def commit(self) -> None:
        pass  # upserts waited for; the server indexes in the background

    def abort(self) -> None:
        pass  # fourfold calls delete_version for the unfinished version


class ServerReader(QdrantReader):
    def __init__(self, store: ServerStore, collection: str):
        self.store = store
        self.collection = collection
        self.encoder = store.encoder
        self.version = ""

    def count(self) -> int:
        return int(self.store.client.count(self.collection, exact=True).count)

    def chunks(self) -> Iterator[fourfold.Chunk]:
        offset = None
        while True:
            records, offset = self.store.client.scroll(self.collection, limit=1000, offset=offset, with_payload=True)
            for r in records:
                yield fourfold.Chunk.from_payload(r.payload or {})
            if offset is None:
                break

    def search_many(
        self, probes: Sequence[Probe], filters: fourfold.SearchFilters | None, *, with_payload: bool = True
    ) -> list[list[fourfold.Passage]]:
        from qdrant_client import models as m

        flt = server_filter(filters)
        params = m.SearchParams(hnsw_ef=self.store.hnsw_ef, exact=self.store.exact)
        requests = []
        for probe in probes:
            if probe.using == SPARSE:
                vector: Any = m.SparseVector(indices=list(probe.vector[0]), values=list(probe.vector[1]))
            else:
                vector = list(probe.vector)
            requests.append(
                m.QueryRequest(query=vector, using=probe.using, limit=probe.limit, filter=flt, with_payload=with_payload, params=params)
            )
        responses = self.store.client.query_batch_points(self.collection, requests)
        return [[passage_from(p.id, p.payload, p.score) for p in r.points] for r in responses]

    def fetch(self, chunk_ids: Sequence[str]) -> dict[str, fourfold.Chunk]:
        records = self.store.client.retrieve(self.collection, list(chunk_ids), with_payload=True, with_vectors=False)
        return {str(r.id): fourfold.Chunk.from_payload(r.payload or {}) for r in records}

    def close(self) -> None:
        pass  # the client is shared by the process


def server_filter(filters: fourfold.SearchFilters | None):
    if not filters:
        return None
    from qdrant_client import models as m

    must: list[Any] = []
    if filters.source_prefix:
        must.append(m.FieldCondition(key="source", match=m.MatchPrefix(prefix=filters.source_prefix)))
    if filters.file_types:
        must.append(m.FieldCondition(key="file_type", match=m.MatchAny(any=list(filters.file_types))))
    for tag in filters.tags:
        must.append(m.FieldCondition(key="tags", match=m.MatchValue(value=tag)))
    for key, value in filters.metadata:  # a list-valued field matches when it holds the value
        must.append(m.FieldCondition(key=f"metadata.{key}", match=m.MatchValue(value=value)))
    return m.Filter(must=must)
