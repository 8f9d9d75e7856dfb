"""The Qdrant stand-in, driven through the real qdrant-client over HTTP.

Every test but the last runs against ``qdrant_server_url``: the stand-in, or a real
Qdrant when ``FOURFOLD_TEST_QDRANT_URL`` is set, so the stand-in is held to what the
real server does. Collection names are unique: the server need not be empty.
"""

from __future__ import annotations

import os
import threading
import uuid

import httpx
import pytest
from qdrant_client import QdrantClient
from qdrant_client.common.version_check import is_compatible
from qdrant_client.http import models as m
from qdrant_client.http.exceptions import UnexpectedResponse

from .qdrant_fixtures import QDRANT_URL_VARIABLE
from .qdrant_standin import QDRANT_VERSION, running_standin

pytestmark = pytest.mark.integration

DENSE, SPARSE = "dense", "bm25"
REAL_QDRANT = bool(os.environ.get(QDRANT_URL_VARIABLE))


def unique(stem: str) -> str:
    return f"standin-{stem}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(qdrant_server_url):
    client = QdrantClient(url=qdrant_server_url, prefer_grpc=False)
    yield client
    client.close()


def create(client: QdrantClient, name: str) -> None:
    """A collection shaped like fourfold's: dense ``dense`` (cosine) and sparse ``bm25`` (idf)."""
    client.create_collection(
        name,
        vectors_config={DENSE: m.VectorParams(size=3, distance=m.Distance.COSINE)},
        sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
    )


def point(i: int, **payload) -> m.PointStruct:
    """Point ``i``: dense ``[1, i, 0]``; sparse term ``i`` plus the shared term 100."""
    return m.PointStruct(
        id=i,
        vector={DENSE: [1.0, float(i), 0.0], SPARSE: m.SparseVector(indices=[i, 100], values=[1.0, 0.5])},
        payload={"n": i, "source": f"doc{i}.md", **payload},
    )


@pytest.fixture
def filled(client):
    """A fresh collection with ten points: ``n`` = 0…9, ``kind`` a or b, text, tags."""
    name = unique("points")
    create(client, name)
    client.upsert(
        name,
        [point(i, kind="a" if i % 2 else "b", text=f"about topic {i}", tags=["even"] if i % 2 == 0 else []) for i in range(10)],
        wait=True,
    )
    return name


def status_of(call) -> int:
    with pytest.raises(UnexpectedResponse) as caught:
        call()
    return caught.value.status_code


def ids(records) -> list:
    return sorted(r.id for r in records)


# ------------------------------------------------------------------ service


def test_root_names_qdrant_with_a_version_the_client_accepts(qdrant_server_url):
    root = httpx.get(qdrant_server_url + "/").json()
    assert root["title"] == "qdrant - vector search engine"
    assert is_compatible(QDRANT_VERSION, root["version"])
    assert httpx.get(qdrant_server_url + "/healthz").status_code == 200


# ------------------------------------------------------------------ collections


def test_a_collection_is_created_described_listed_and_deleted(client):
    name = unique("life")
    assert not client.collection_exists(name)
    assert client.create_collection(
        name,
        vectors_config={DENSE: m.VectorParams(size=3, distance=m.Distance.COSINE)},
        sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
    )
    assert client.collection_exists(name)
    assert name in {c.name for c in client.get_collections().collections}
    info = client.get_collection(name)
    assert info.config.params.vectors[DENSE].size == 3
    assert info.config.params.vectors[DENSE].distance == m.Distance.COSINE
    assert info.config.params.sparse_vectors[SPARSE].modifier == m.Modifier.IDF
    assert client.delete_collection(name)
    assert not client.collection_exists(name)


def test_creating_an_existing_collection_is_a_conflict(client):
    name = unique("twice")
    create(client, name)
    assert status_of(lambda: create(client, name)) == 409


def test_a_missing_collection_is_not_found(client):
    name = unique("missing")
    assert status_of(lambda: client.get_collection(name)) == 404
    assert status_of(lambda: client.scroll(name)) == 404
    assert status_of(lambda: client.upsert(name, [point(1)])) == 404


def test_payload_indexes_of_keyword_and_integer_fields_are_accepted(client, filled):
    for schema in (m.PayloadSchemaType.KEYWORD, m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD)):
        result = client.create_payload_index(filled, "source", schema, wait=True)
        assert result.status == m.UpdateStatus.COMPLETED
    assert client.create_payload_index(filled, "n", m.PayloadSchemaType.INTEGER, wait=True).status == m.UpdateStatus.COMPLETED
    # an indexed field still filters as before
    assert client.count(filled, count_filter=m.Filter(must=[m.FieldCondition(key="n", range=m.Range(gte=5))])).count == 5


# ------------------------------------------------------------------ aliases


def test_aliases_are_created_listed_renamed_and_deleted(client, filled):
    alias, renamed = unique("alias"), unique("renamed")
    assert client.update_collection_aliases(
        [m.CreateAliasOperation(create_alias=m.CreateAlias(collection_name=filled, alias_name=alias))]
    )
    assert (alias, filled) in {(a.alias_name, a.collection_name) for a in client.get_aliases().aliases}
    assert [a.alias_name for a in client.get_collection_aliases(filled).aliases] == [alias]
    assert client.count(alias).count == 10  # the alias reads as the collection

    client.update_collection_aliases(
        [m.RenameAliasOperation(rename_alias=m.RenameAlias(old_alias_name=alias, new_alias_name=renamed))]
    )
    assert [a.alias_name for a in client.get_collection_aliases(filled).aliases] == [renamed]
    client.update_collection_aliases([m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=renamed))])
    assert client.get_collection_aliases(filled).aliases == []


def test_an_alias_name_cannot_become_a_collection(client, filled):
    alias = unique("taken")
    client.update_collection_aliases(
        [m.CreateAliasOperation(create_alias=m.CreateAlias(collection_name=filled, alias_name=alias))]
    )
    assert status_of(lambda: create(client, alias)) == 400  # Qdrant's answer: bad input, not a conflict


def test_an_alias_swap_is_atomic_for_readers(qdrant_server_url, client, filled):
    """Readers of the alias always find one of the two collections, never none."""
    other, alias = unique("other"), unique("swap")
    create(client, other)
    client.upsert(other, [point(i) for i in range(3)], wait=True)
    client.update_collection_aliases(
        [m.CreateAliasOperation(create_alias=m.CreateAlias(collection_name=filled, alias_name=alias))]
    )

    seen: list[int] = []
    errors: list[Exception] = []
    done = threading.Event()

    def read():
        reader = QdrantClient(url=qdrant_server_url, prefer_grpc=False)
        try:
            while not done.is_set():
                seen.append(reader.count(alias).count)
        except Exception as error:  # a 404 between the delete and the create
            errors.append(error)
        finally:
            reader.close()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        swaps = 0
        while (len(seen) < 30 or swaps % 2) and swaps < 1000 and not errors:  # end pointing at `filled`
            target = other if swaps % 2 == 0 else filled
            swaps += 1
            client.update_collection_aliases(
                [
                    m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=alias)),
                    m.CreateAliasOperation(create_alias=m.CreateAlias(collection_name=target, alias_name=alias)),
                ]
            )
    finally:
        done.set()
        reader.join()
    assert errors == []
    assert len(seen) >= 30 and set(seen) == {10, 3}
    assert [a.collection_name for a in client.get_aliases().aliases if a.alias_name == alias] == [filled]


# ------------------------------------------------------------------ points


def test_upserted_points_come_back_with_named_dense_and_sparse_vectors(client, filled):
    [record] = client.retrieve(filled, [4], with_payload=True, with_vectors=True)
    assert record.payload["n"] == 4 and record.payload["kind"] == "b"
    assert set(record.vector) == {DENSE, SPARSE}
    assert len(record.vector[DENSE]) == 3
    assert sorted(record.vector[SPARSE].indices) == [4, 100]
    [bare] = client.retrieve(filled, [4], with_payload=False, with_vectors=False)
    assert not bare.payload and not bare.vector
    assert client.retrieve(filled, [123456]) == []


def test_points_are_deleted_by_ids_and_by_filter(client, filled):
    client.delete(filled, m.PointIdsList(points=[0, 1]), wait=True)
    client.delete(filled, m.FilterSelector(filter=m.Filter(must=[m.FieldCondition(key="n", range=m.Range(gte=8))])), wait=True)
    assert client.count(filled, exact=True).count == 6
    assert ids(client.scroll(filled, limit=100)[0]) == [2, 3, 4, 5, 6, 7]


def test_a_conditional_upsert_is_a_compare_and_set(client, filled):
    # insert_only leaves an existing point alone and creates a missing one
    client.upsert(filled, [point(1, n=-1), point(42)], wait=True, update_mode=m.UpdateMode.INSERT_ONLY)
    assert client.retrieve(filled, [1])[0].payload["n"] == 1 and client.retrieve(filled, [42])
    # update_filter replaces only a point that matches it
    guard = m.Filter(must=[m.FieldCondition(key="n", range=m.Range(lte=2))])
    client.upsert(filled, [point(2, kind="won"), point(5, kind="won")], wait=True, update_filter=guard)
    assert client.retrieve(filled, [2])[0].payload["kind"] == "won"
    assert client.retrieve(filled, [5])[0].payload["kind"] == "a"


def test_payload_is_set_by_ids_and_by_filter_overwritten_and_deleted(client, filled):
    client.set_payload(filled, {"flag": "by-id"}, points=[1, 2], wait=True)
    client.set_payload(
        filled, {"flag": "by-filter"}, points=m.Filter(must=[m.FieldCondition(key="n", range=m.Range(gte=8))]), wait=True
    )
    flagged = {r.id: r.payload["flag"] for r in client.scroll(filled, limit=100)[0] if "flag" in r.payload}
    assert flagged == {1: "by-id", 2: "by-id", 8: "by-filter", 9: "by-filter"}

    client.overwrite_payload(filled, {"only": True}, points=[1], wait=True)
    assert client.retrieve(filled, [1])[0].payload == {"only": True}

    client.delete_payload(filled, ["flag"], points=[2], wait=True)
    client.delete_payload(filled, ["kind", "text"], points=m.Filter(must=[m.FieldCondition(key="n", range=m.Range(gte=8))]), wait=True)
    assert "flag" not in client.retrieve(filled, [2])[0].payload
    assert set(client.retrieve(filled, [9])[0].payload) == {"n", "source", "tags", "flag"}


def test_scroll_and_count_filter_on_an_integer_range(client, filled):
    in_range = m.Filter(must=[m.FieldCondition(key="n", range=m.Range(gte=3, lt=7))])
    assert client.count(filled, count_filter=in_range, exact=True).count == 4
    records, next_offset = client.scroll(filled, scroll_filter=in_range, limit=10)
    assert ids(records) == [3, 4, 5, 6] and next_offset is None

    # pages: limit and the offset the previous page handed back
    first, offset = client.scroll(filled, limit=4)
    second, offset2 = client.scroll(filled, limit=4, offset=offset)
    third, end = client.scroll(filled, limit=4, offset=offset2)
    assert ids(first + second + third) == list(range(10)) and end is None

    [record], _ = client.scroll(filled, scroll_filter=m.Filter(must=[m.FieldCondition(key="n", match=m.MatchValue(value=5))]),
                                with_payload=["kind"], with_vectors=True)
    assert record.payload == {"kind": "a"}
    assert set(record.vector) == {DENSE, SPARSE}
    [plain], _ = client.scroll(filled, scroll_filter=m.Filter(must=[m.FieldCondition(key="n", match=m.MatchValue(value=5))]),
                               with_payload=False, with_vectors=False)
    assert not plain.payload and not plain.vector


# ------------------------------------------------------------------ queries


def test_a_dense_query_finds_the_nearest_point_first(client, filled):
    hits = client.query_points(
        filled, [1.0, 2.0, 0.0], using=DENSE, limit=3, with_payload=True, search_params=m.SearchParams(hnsw_ef=64, exact=False)
    ).points
    assert hits[0].id == 2 and hits[0].payload["n"] == 2
    assert len(hits) == 3 and hits[0].score >= hits[1].score >= hits[2].score
    exact = client.query_points(filled, [1.0, 2.0, 0.0], using=DENSE, limit=1, search_params=m.SearchParams(exact=True))
    assert exact.points[0].id == 2


def test_a_sparse_query_matches_by_term(client, filled):
    hits = client.query_points(filled, m.SparseVector(indices=[7], values=[1.0]), using=SPARSE, limit=5, with_payload=False).points
    assert [h.id for h in hits] == [7]
    assert not hits[0].payload


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (m.Filter(must=[m.FieldCondition(key="kind", match=m.MatchValue(value="a"))]), [1, 3, 5, 7, 9]),
        (m.Filter(must=[m.FieldCondition(key="n", match=m.MatchAny(any=[2, 4, 6]))]), [2, 4, 6]),
        (m.Filter(must=[m.FieldCondition(key="source", match=m.MatchAny(any=["doc1.md", "doc3.md"]))]), [1, 3]),
        (m.Filter(must=[m.FieldCondition(key="text", match=m.MatchText(text="topic 4"))]), [4]),
        (m.Filter(must=[m.FieldCondition(key="n", range=m.Range(gt=2, lte=5))]), [3, 4, 5]),
        (m.Filter(must=[m.IsEmptyCondition(is_empty=m.PayloadField(key="tags"))]), [1, 3, 5, 7, 9]),
        (m.Filter(must_not=[m.FieldCondition(key="n", range=m.Range(lt=8))]), [8, 9]),
        (
            m.Filter(
                should=[m.FieldCondition(key="n", match=m.MatchValue(value=0)), m.FieldCondition(key="n", match=m.MatchValue(value=9))]
            ),
            [0, 9],
        ),
        (
            m.Filter(
                must=[m.FieldCondition(key="kind", match=m.MatchValue(value="b"))],
                must_not=[m.FieldCondition(key="n", match=m.MatchAny(any=[0, 2]))],
            ),
            [4, 6, 8],
        ),
    ],
    ids=["match-value", "match-any-int", "match-any-keyword", "match-text", "range", "is-empty", "must-not", "should", "must-and-must-not"],
)
def test_a_query_filter_keeps_only_the_matching_points(client, filled, condition, expected):
    hits = client.query_points(filled, [1.0, 0.0, 0.0], using=DENSE, query_filter=condition, limit=10).points
    assert sorted(h.id for h in hits) == expected
    sparse = client.query_points(filled, m.SparseVector(indices=[100], values=[1.0]), using=SPARSE, query_filter=condition, limit=10)
    assert sorted(h.id for h in sparse.points) == expected


def test_a_query_batch_answers_each_request_in_order(client, filled):
    only_a = m.Filter(must=[m.FieldCondition(key="kind", match=m.MatchValue(value="a"))])
    responses = client.query_batch_points(
        filled,
        [
            m.QueryRequest(query=[1.0, 6.0, 0.0], using=DENSE, limit=1, with_payload=True, params=m.SearchParams(hnsw_ef=32)),
            m.QueryRequest(query=m.SparseVector(indices=[3], values=[1.0]), using=SPARSE, limit=2, filter=only_a, with_payload=False),
            m.QueryRequest(query=[1.0, 6.0, 0.0], using=DENSE, limit=2, filter=only_a, with_payload=["n"]),
        ],
    )
    assert [h.id for h in responses[0].points] == [6] and responses[0].points[0].payload["source"] == "doc6.md"
    assert [h.id for h in responses[1].points] == [3] and not responses[1].points[0].payload
    assert [h.id for h in responses[2].points] == [7, 5] and responses[2].points[0].payload == {"n": 7}


# ------------------------------------------------------------------ errors


def test_bad_input_is_a_bad_request_in_qdrants_error_shape(qdrant_server_url, client, filled):
    answer = httpx.post(f"{qdrant_server_url}/collections/{filled}/points/scroll", json={"limit": "many"})
    assert answer.status_code == 400
    assert answer.json()["status"]["error"]
    assert status_of(lambda: client.query_points(filled, [1.0, 0.0, 0.0], using=DENSE, limit=0)) in (400, 422)


@pytest.mark.skipif(REAL_QDRANT, reason="about the stand-in's own limits")
def test_an_unsupported_endpoint_says_so(qdrant_server_url, filled):
    answer = httpx.post(f"{qdrant_server_url}/collections/{filled}/snapshots")
    assert answer.status_code == 404
    assert "not supported by the Qdrant stand-in" in answer.json()["status"]["error"]


# ------------------------------------------------------------------ the stand-in's own data


def test_a_restarted_stand_in_keeps_collections_points_and_aliases(tmp_path):
    name, alias = unique("kept"), unique("kept-alias")
    with running_standin(tmp_path) as url:
        client = QdrantClient(url=url, prefer_grpc=False)
        create(client, name)
        client.upsert(name, [point(i) for i in range(5)], wait=True)
        client.set_payload(name, {"marked": True}, points=[3], wait=True)
        client.update_collection_aliases([m.CreateAliasOperation(create_alias=m.CreateAlias(collection_name=name, alias_name=alias))])
        client.close()
    with running_standin(tmp_path) as url:
        client = QdrantClient(url=url, prefer_grpc=False)
        assert client.count(alias, exact=True).count == 5
        assert client.retrieve(name, [3])[0].payload["marked"] is True
        assert client.query_points(name, m.SparseVector(indices=[2], values=[1.0]), using=SPARSE, limit=1).points[0].id == 2
        assert status_of(lambda: create(client, name)) == 409
        client.close()
