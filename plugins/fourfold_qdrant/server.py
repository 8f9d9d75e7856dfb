"""The distributed engine: a Qdrant server (or cluster) through qdrant-client.

Every version of a domain's index lives in one collection, ``<namespace>--<domain>``.
A point belongs to the versions in the range ``[_v_from, _v_to)`` of its payload; a
reader of version *V* adds ``_v_from <= V < _v_to`` to every query. A new version is
the open points (``_v_to`` still unset) plus the delta:

- a new or changed chunk is a new point with ``_v_from = V``;
- an open point the new version does not hold is closed: ``_v_to = V``;
- a point of the base version that a later, unpublished version closed (after a
  rollback) is copied into a new point.

Nothing else is touched, so a refresh moves only the changed chunks through the worker,
and readers of earlier versions see them unchanged. Points that no kept version holds
any more are deleted by :meth:`ServerStore.retain`.

The records that say which version is published, the catalogs and the history live in
a second collection, ``<namespace>--<domain>--records`` (:class:`QdrantRecords`), so any
host with an empty state dir can serve and refresh the domain. Writes there that must
not race (a version number, the published pointer) use Qdrant's conditional upserts:
``update_mode: insert_only`` and an ``update_filter`` on the record's fencing token.

``FOURFOLD_QDRANT_URL`` may also be ``:memory:`` or ``local:PATH`` for qdrant-client's
local mode, which speaks the same API (one process).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

import fourfold

from fourfold_qdrant.sparse import SparseEncoder, SparseSettings
from fourfold_qdrant.store import DENSE, PAYLOAD_INDEXES, SPARSE, Probe, QdrantReader

__all__ = ["ServerStore", "ServerWriter", "ServerReader", "QdrantRecords", "client_for", "collection_names", "OPEN"]

log = logging.getLogger("fourfold.qdrant")

V_FROM = "_v_from"
V_TO = "_v_to"
OPEN = 2**62
"""``_v_to`` of a point no version closed yet."""

_BATCH = 512
_POINT_NAMESPACE = uuid.UUID("8f0b0d5e-4a7e-4c1e-9d0a-6f6f7572666f")
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
                # qdrant-client speaks HTTP through httpx, which logs every request at
                # INFO: one line per search in the API's and worker's logs. Unless someone
                # set httpx's level, keep those to warnings.
                httpx_log = logging.getLogger("httpx")
                if httpx_log.level == logging.NOTSET:
                    httpx_log.setLevel(logging.WARNING)
                client = QdrantClient(url=url, api_key=api_key, timeout=60)
            _clients[key] = client
        return client


def collection_names(namespace: str, domain: str) -> tuple[str, str]:
    """The chunk and record collections of ``domain`` in deployment ``namespace``."""
    return f"{namespace}--{domain}", f"{namespace}--{domain}--records"


def _version_of(location: Path) -> int:
    name = Path(location).parent.name
    if not (name.startswith("v") and name[1:].isdigit()):
        raise ValueError(f"{location}: not the store folder of an index version (…/v000004/store)")
    return int(name[1:])


def _point_id(chunk_id: str, version: int) -> str:
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{chunk_id}@{version}"))


def _in_version(version: int):
    from qdrant_client import models as m

    return [
        m.FieldCondition(key=V_FROM, range=m.Range(lte=version)),
        m.FieldCondition(key=V_TO, range=m.Range(gt=version)),
    ]


def _open_points():
    from qdrant_client import models as m

    return m.FieldCondition(key=V_TO, range=m.Range(gte=OPEN))


class ServerStore(fourfold.IndexStore):
    """Index versions as payload ranges in one collection per domain on a Qdrant server.

    :param url: server URL (``http(s)://host:6333``), ``:memory:`` or ``local:PATH``.
    :param namespace: the deployment's namespace (``FOURFOLD_NAMESPACE``); part of every
        collection name, so deployments sharing a server never touch each other's.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None,
        domain: str,
        dimension: int,
        sparse: SparseSettings,
        *,
        namespace: str = "fourfold",
        hnsw_ef: int | None = None,
        exact: bool = False,
    ):
        self.url = url
        self.api_key = api_key
        self.domain = domain
        self.namespace = namespace
        self.dimension = dimension
        self.sparse = sparse
        self.hnsw_ef = hnsw_ef
        self.exact = exact
        self.encoder = SparseEncoder(sparse)
        self.collection, self.records_collection = collection_names(namespace, domain)
        self._ready = False
        self._records: QdrantRecords | None = None

    @property
    def client(self):
        return client_for(self.url, self.api_key)

    @property
    def store_id(self) -> str:
        return f"qdrant-server/ranges/{self.dimension}d/bm25-{self.sparse.tag}"

    def shared_records(self) -> "QdrantRecords":
        if self._records is None:
            self._records = QdrantRecords(self.client, self.records_collection, where=self.url)
        return self._records

    def ensure(self) -> None:
        """Create the domain's collection and its payload indexes when missing."""
        if self._ready:
            return
        from qdrant_client import models as m
        from qdrant_client.http.exceptions import UnexpectedResponse

        client = self.client
        if not client.collection_exists(self.collection):
            try:
                client.create_collection(
                    self.collection,
                    vectors_config={DENSE: m.VectorParams(size=self.dimension, distance=m.Distance.COSINE)},
                    sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
                )
            except UnexpectedResponse as exc:
                if exc.status_code not in (400, 409):  # another host created it meanwhile
                    raise
            with warnings.catch_warnings():  # local mode warns that payload indexes do nothing there
                warnings.simplefilter("ignore")
                for field in (V_FROM, V_TO):
                    client.create_payload_index(self.collection, field, m.PayloadSchemaType.INTEGER)
                client.create_payload_index(self.collection, "id", m.PayloadSchemaType.KEYWORD)
                client.create_payload_index(self.collection, "source", m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD))
                for field in PAYLOAD_INDEXES[1:]:
                    client.create_payload_index(self.collection, field, m.PayloadSchemaType.KEYWORD)
        self._ready = True

    def create_version(self, location: Path, base: Path | None) -> "ServerWriter":
        location = Path(location)
        location.mkdir(parents=True, exist_ok=True)
        self.ensure()
        (location / _STORE_INFO).write_text(
            json.dumps({"engine": "qdrant-server", "collection": self.collection, "store_id": self.store_id}, indent=1),
            encoding="utf-8",
        )
        return ServerWriter(self, _version_of(location), None if base is None else _version_of(Path(base)))

    def open_version(self, location: Path) -> "ServerReader":
        if not self.client.collection_exists(self.collection):
            raise FileNotFoundError(f"Qdrant collection {self.collection} at {self.url}")
        return ServerReader(self, _version_of(location))

    def delete_version(self, location: Path) -> None:
        """Nothing here: a version's points may belong to later versions too. Whatever
        no kept version holds any more goes in :meth:`retain`."""

    def retain(self, locations: Sequence[Path]) -> None:
        """Delete the points whose version range holds none of the kept versions. Only
        closed points can qualify, and of those only ones closed at or before the oldest
        kept version, so a writer with a stale view never deletes what newer versions hold."""
        from qdrant_client import models as m

        kept = sorted({_version_of(Path(p)) for p in locations})
        if not kept or not self.client.collection_exists(self.collection):
            return
        floor = kept[0]
        self.client.delete(
            self.collection,
            m.FilterSelector(filter=m.Filter(must=[m.FieldCondition(key=V_TO, range=m.Range(lte=floor))])),
            wait=True,
        )
        # Closed later than the floor but between kept versions (e.g. a version discarded
        # between two kept ones): checked point by point, few in practice.
        doomed = []
        for point in _scroll(self.client, self.collection, m.Filter(must=[m.FieldCondition(key=V_TO, range=m.Range(gt=floor, lt=OPEN))]), [V_FROM, V_TO]):
            lo, hi = int(point.payload[V_FROM]), int(point.payload[V_TO])
            if not any(lo <= k < hi for k in kept) and hi <= kept[-1]:
                doomed.append(point.id)
        for i in range(0, len(doomed), _BATCH):
            self.client.delete(self.collection, m.PointIdsList(points=doomed[i : i + _BATCH]), wait=True)


def _scroll(client, collection: str, flt, fields: list[str] | bool, *, vectors: bool = False, batch: int = 2048):
    offset = None
    while True:
        records, offset = client.scroll(collection, scroll_filter=flt, limit=batch, offset=offset, with_payload=fields, with_vectors=vectors)
        yield from records
        if offset is None:
            return


class ServerWriter(fourfold.VersionWriter):
    """Builds version ``version`` from ``base``: writes new points as they come, and at
    :meth:`commit` closes what the version no longer holds."""

    def __init__(self, store: ServerStore, version: int, base: int | None):
        from qdrant_client import models as m

        self.store = store
        self.version = version
        self.base = base
        # chunk id -> point id: the base version's points, then what this version changes.
        self.members: dict[str, str] = {}
        if base is not None:
            for point in _scroll(store.client, store.collection, m.Filter(must=_in_version(base)), ["id"]):
                self.members[str(point.payload["id"])] = str(point.id)
        self.added: set[str] = set()
        self.copied = 0
        self.closed = 0

    def upsert(self, chunks: Sequence[fourfold.Chunk], vectors: "np.ndarray | None") -> None:
        from qdrant_client import models as m

        if vectors is None:
            raise ValueError("the qdrant stores need dense vectors for every chunk")
        points = []
        for chunk, vector in zip(chunks, vectors):
            indices, values = self.store.encoder.document(chunk)
            pid = _point_id(chunk.id, self.version)
            payload = chunk.payload()
            payload[V_FROM], payload[V_TO] = self.version, OPEN
            points.append(
                m.PointStruct(
                    id=pid,
                    vector={DENSE: np.asarray(vector, dtype=np.float32).tolist(), SPARSE: m.SparseVector(indices=indices, values=values)},
                    payload=payload,
                )
            )
            self.members[chunk.id] = pid
            self.added.add(pid)
        if points:
            self.store.client.upsert(self.store.collection, points, wait=True)

    def delete(self, chunk_ids: Sequence[str]) -> None:
        for cid in chunk_ids:
            self.members.pop(cid, None)

    def count(self) -> int:
        return len(self.members)

    def commit(self) -> None:
        from qdrant_client import models as m

        client, collection = self.store.client, self.store.collection
        wanted = set(self.members.values())
        open_now = {
            str(p.id)
            for p in _scroll(client, collection, m.Filter(must=[_open_points()], must_not=[m.FieldCondition(key=V_FROM, range=m.Range(gte=self.version))]), False)
        }
        # Close what this version does not hold.
        to_close = sorted(open_now - wanted)
        for i in range(0, len(to_close), _BATCH):
            client.set_payload(collection, {V_TO: self.version}, points=to_close[i : i + _BATCH], wait=True)
        # Copy the base's points that a later, unpublished version closed (after a rollback).
        missing = sorted(wanted - open_now - self.added)
        for i in range(0, len(missing), _BATCH):
            records = client.retrieve(collection, missing[i : i + _BATCH], with_payload=True, with_vectors=True)
            points = []
            for r in records:
                payload = dict(r.payload or {})
                cid = str(payload.get("id"))
                payload[V_FROM], payload[V_TO] = self.version, OPEN
                pid = _point_id(cid, self.version)
                points.append(m.PointStruct(id=pid, vector=r.vector, payload=payload))
                self.members[cid] = pid
            if points:
                client.upsert(collection, points, wait=True)
        self.closed, self.copied = len(to_close), len(missing)

    def abort(self) -> None:
        pass  # fourfold calls delete_version for the unfinished version


class ServerReader(QdrantReader):
    def __init__(self, store: ServerStore, version: int):
        self.store = store
        self.collection = store.collection
        self.number = version
        self.encoder = store.encoder
        self.version = ""

    def _filter(self, filters: fourfold.SearchFilters | None = None):
        from qdrant_client import models as m

        extra = server_filter(filters)
        must = list(_in_version(self.number)) + (list(extra.must or []) if extra is not None else [])
        return m.Filter(must=must)

    def count(self) -> int:
        return int(self.store.client.count(self.collection, count_filter=self._filter(), exact=True).count)

    def chunks(self) -> Iterator[fourfold.Chunk]:
        for r in _scroll(self.store.client, self.collection, self._filter(), True, batch=1000):
            yield _chunk(r.payload)

    def search_many(
        self, probes: Sequence[Probe], filters: fourfold.SearchFilters | None, *, with_payload: bool = True
    ) -> list[list[fourfold.Passage]]:
        from qdrant_client import models as m

        flt = self._filter(filters)
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
        out = []
        for r in responses:
            passages = []
            for p in r.points:
                if p.payload:
                    passages.append(fourfold.Passage(chunk=_chunk(p.payload), score=float(p.score)))
                else:  # a fusion's candidate: the point id stands for the chunk until fetch()
                    passages.append(fourfold.Passage(chunk=fourfold.Chunk(id=str(p.id), text="", source="", title=""), score=float(p.score)))
            out.append(passages)
        return out

    def fetch(self, chunk_ids: Sequence[str]) -> dict[str, fourfold.Chunk]:
        """The chunks of these point ids (what :meth:`search_many` gave without payload)."""
        records = self.store.client.retrieve(self.collection, list(chunk_ids), with_payload=True, with_vectors=False)
        return {str(r.id): _chunk(r.payload) for r in records}

    def close(self) -> None:
        pass  # the client is shared by the process


def _chunk(payload: dict[str, Any] | None) -> fourfold.Chunk:
    data = {k: v for k, v in (payload or {}).items() if k not in (V_FROM, V_TO)}
    return fourfold.Chunk.from_payload(data)


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


# -------------------------------------------------------------------------
# records
# -------------------------------------------------------------------------


class QdrantRecords(fourfold.IndexRecords):
    """:class:`fourfold.IndexRecords` as points without vectors in one collection.

    A record is one point (id derived from its key) with the payload ``key``, ``kind``
    (the key's first part), ``value`` (JSON text) and, on fenced records, ``fence``.
    """

    def __init__(self, client, collection: str, *, where: str = ""):
        self.client = client
        self.collection = collection
        self.location = f"Qdrant {where} collection {collection}"
        self._ready = False

    def _ensure(self) -> None:
        if self._ready:
            return
        from qdrant_client import models as m
        from qdrant_client.http.exceptions import UnexpectedResponse

        if not self.client.collection_exists(self.collection):
            try:
                self.client.create_collection(self.collection, vectors_config={})
            except UnexpectedResponse as exc:
                if exc.status_code not in (400, 409):
                    raise
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.client.create_payload_index(self.collection, "kind", m.PayloadSchemaType.KEYWORD)
                self.client.create_payload_index(self.collection, "fence", m.PayloadSchemaType.INTEGER)
        self._ready = True

    @staticmethod
    def _id(key: str) -> str:
        return str(uuid.uuid5(_POINT_NAMESPACE, "record:" + key))

    @staticmethod
    def _kind(key: str) -> str:
        return key.split("/", 1)[0]

    def _point(self, key: str, value: dict[str, Any], fence: int | None = None):
        from qdrant_client import models as m

        payload: dict[str, Any] = {"key": key, "kind": self._kind(key), "value": json.dumps(value, separators=(",", ":"))}
        if fence is not None:
            payload["fence"] = int(fence)
        return m.PointStruct(id=self._id(key), vector={}, payload=payload)

    @staticmethod
    def _value(payload: dict[str, Any] | None) -> dict[str, Any]:
        payload = payload or {}
        try:
            value = json.loads(payload.get("value") or "{}")
        except ValueError:
            value = {}
        if "fence" in payload:
            value["fence"] = payload["fence"]
        return value

    def get(self, key):
        self._ensure()
        records = self.client.retrieve(self.collection, [self._id(key)], with_payload=True)
        return self._value(records[0].payload) if records else None

    def put(self, key, value):
        self._ensure()
        self.client.upsert(self.collection, [self._point(key, value)], wait=True)

    def put_new(self, key, value):
        from qdrant_client import models as m

        self._ensure()
        marker = uuid.uuid4().hex
        mine = dict(value, _claim=marker)
        self.client.upsert(self.collection, [self._point(key, mine)], wait=True, update_mode=m.UpdateMode.INSERT_ONLY)
        found = self.get(key) or {}
        return found.get("_claim") == marker

    def put_fenced(self, key, value, token):
        from qdrant_client import models as m

        self._ensure()
        marker = uuid.uuid4().hex
        point = self._point(key, dict(value, _claim=marker), fence=token)
        self.client.upsert(self.collection, [point], wait=True, update_mode=m.UpdateMode.INSERT_ONLY)
        self.client.upsert(
            self.collection,
            [point],
            wait=True,
            update_filter=m.Filter(must=[m.FieldCondition(key="fence", range=m.Range(lte=int(token)))]),
        )
        found = self.get(key) or {}
        return found.get("_claim") == marker

    def raise_fence(self, key, token):
        from qdrant_client import models as m

        self._ensure()
        self.client.upsert(self.collection, [self._point(key, {}, fence=token)], wait=True, update_mode=m.UpdateMode.INSERT_ONLY)
        self.client.set_payload(
            self.collection,
            {"fence": int(token)},
            points=m.Filter(must=[m.HasIdCondition(has_id=[self._id(key)]), m.FieldCondition(key="fence", range=m.Range(lt=int(token)))]),
            wait=True,
        )
        return int((self.get(key) or {}).get("fence") or 0)

    def keys(self, prefix):
        return [k for k, _ in self._scan(prefix, values=False)]

    def items(self, prefix):
        return self._scan(prefix, values=True)

    def _scan(self, prefix: str, *, values: bool) -> list[tuple[str, dict[str, Any]]]:
        from qdrant_client import models as m

        self._ensure()
        flt = m.Filter(must=[m.FieldCondition(key="kind", match=m.MatchValue(value=self._kind(prefix)))])
        out = []
        for r in _scroll(self.client, self.collection, flt, True if values else ["key"]):
            key = str((r.payload or {}).get("key") or "")
            if key.startswith(prefix):
                out.append((key, self._value(r.payload) if values else {}))
        return sorted(out, key=lambda kv: kv[0])

    def delete(self, keys):
        from qdrant_client import models as m

        keys = list(keys)
        if not keys:
            return
        self._ensure()
        self.client.delete(self.collection, m.PointIdsList(points=[self._id(k) for k in keys]), wait=True)
