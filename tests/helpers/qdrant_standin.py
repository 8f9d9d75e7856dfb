"""A Qdrant server stand-in: test equipment, not a Qdrant server.

It speaks the subset of Qdrant's REST API that fourfold's server engine sends through
qdrant-client (``prefer_grpc=False``), and answers it with a real Qdrant engine:
qdrant-client's local mode, persisted in one folder, so a restarted stand-in on the same
folder keeps its collections, points and aliases. Request bodies are parsed with
qdrant-client's own REST models; answers use Qdrant's envelope
(``{"result": ..., "status": "ok", "time": ...}``) and its error shape
(``{"status": {"error": ...}, "time": ...}``) with Qdrant's HTTP codes: 404 for a missing
collection, 409 when a collection or alias name is taken, 400 for bad input. Any other
path answers 404 saying the stand-in does not support it.

What it is not: one process, one engine, every call behind one lock (local mode is not
thread-safe), exact search only; no sharding, replication, snapshots or payload indexes
(they are accepted and do nothing); ``wait``, ``timeout`` and ``consistency`` parameters
are accepted and ignored, since every write is applied before the answer.

Run it as ``python -m tests.helpers.qdrant_standin --port 6333 --path DIR`` from the
repository root, or from a test with :func:`start_standin` / :func:`running_standin`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import uvicorn
from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python
from qdrant_client import QdrantClient
from qdrant_client.http import models as m
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .servers import wait_until_healthy

__all__ = ["build_app", "start_standin", "stop_standin", "running_standin", "QDRANT_VERSION"]

REPO_ROOT = Path(__file__).resolve().parents[2]

# qdrant-client warns when the server's minor version is more than one away from its own;
# answering with the client's version keeps that check quiet.
QDRANT_VERSION = importlib.metadata.version("qdrant-client")

# what local mode warns that it ignores; the stand-in's docstring says it once
_LOCAL_MODE_WARNINGS = ("Payload indexes have no effect", "Local mode performs exact", "Local mode is not recommended")

_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class QdrantError(Exception):
    """An answer in Qdrant's error shape with the HTTP code Qdrant gives."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _not_found(name: str) -> QdrantError:
    return QdrantError(404, f"Not found: Collection `{name}` doesn't exist!")


def _from_engine_error(error: ValueError) -> QdrantError:
    """Local mode raises ValueError for everything; sort it into Qdrant's codes by its text."""
    text = str(error)
    lowered = text.lower()
    if "not found" in lowered or "does not exist" in lowered:
        return QdrantError(404, f"Not found: {text}")
    if "already exists" in lowered:
        return QdrantError(409, f"Wrong input: {text}")
    return QdrantError(400, f"Wrong input: {text}")


def _selector(points: list | None, flt: m.Filter | None) -> Any:
    """The points a payload request names: an id list or a filter, as Qdrant requires one."""
    if (points is None) == (flt is None):
        raise QdrantError(400, "Wrong input: give either `points` or `filter`")
    return m.PointIdsList(points=points) if points is not None else m.FilterSelector(filter=flt)


class StandIn:
    """The engine behind the routes: one local-mode client and the lock around it."""

    def __init__(self, path: Path):
        self.client = QdrantClient(path=str(path))
        self.lock = threading.Lock()

    def close(self) -> None:
        with self.lock:
            self.client.close()

    def _existing(self, name: str) -> str:
        # a collection or an alias of one, like the server's collection routes accept
        if not self.client.collection_exists(name):
            raise _not_found(name)
        return name

    # ---------------------------------------------------------------- collections

    def get_collections(self, name: None, body: None) -> Any:
        return self.client.get_collections()

    def get_collection(self, name: str, body: None) -> Any:
        return self.client.get_collection(self._existing(name))

    def collection_exists(self, name: str, body: None) -> Any:
        return m.CollectionExistence(exists=self.client.collection_exists(name))

    def create_collection(self, name: str, body: m.CreateCollection) -> Any:
        if name in {c.name for c in self.client.get_collections().collections}:
            raise QdrantError(409, f"Wrong input: Collection `{name}` already exists!")
        if self.client.collection_exists(name):  # the name of an alias: Qdrant calls that bad input
            raise QdrantError(400, f"Wrong input: Can't create collection with name {name}. Alias with the same name already exists")
        return self.client.create_collection(
            name, vectors_config=body.vectors, sparse_vectors_config=body.sparse_vectors, metadata=body.metadata
        )

    def delete_collection(self, name: str, body: None) -> Any:
        return self.client.delete_collection(name)

    def create_payload_index(self, name: str, body: m.CreateFieldIndex) -> Any:
        return self.client.create_payload_index(self._existing(name), body.field_name, body.field_schema)

    # ---------------------------------------------------------------- aliases

    def get_aliases(self, name: None, body: None) -> Any:
        return self.client.get_aliases()

    def get_collection_aliases(self, name: str, body: None) -> Any:
        return self.client.get_collection_aliases(self._existing(name))

    def update_aliases(self, name: None, body: m.ChangeAliasesOperation) -> Any:
        # local mode applies the actions to a copy and saves once: all or nothing
        return self.client.update_collection_aliases(body.actions)

    # ---------------------------------------------------------------- points

    def upsert(self, name: str, body: m.PointsList | m.PointsBatch) -> Any:
        points = body.points if isinstance(body, m.PointsList) else body.batch
        # update_filter / update_mode make an upsert a compare-and-set, which index
        # records rely on (a version number, the fenced published pointer)
        return self.client.upsert(self._existing(name), points, update_filter=body.update_filter, update_mode=body.update_mode)

    def delete(self, name: str, body: m.PointIdsList | m.FilterSelector) -> Any:
        return self.client.delete(self._existing(name), body)

    def set_payload(self, name: str, body: m.SetPayload) -> Any:
        return self.client.set_payload(self._existing(name), body.payload, _selector(body.points, body.filter), key=body.key)

    def overwrite_payload(self, name: str, body: m.SetPayload) -> Any:
        if body.key is not None:
            raise QdrantError(400, "Wrong input: `key` is not supported when overwriting a payload")
        return self.client.overwrite_payload(self._existing(name), body.payload, _selector(body.points, body.filter))

    def delete_payload(self, name: str, body: m.DeletePayload) -> Any:
        return self.client.delete_payload(self._existing(name), body.keys, _selector(body.points, body.filter))

    def scroll(self, name: str, body: m.ScrollRequest) -> Any:
        points, next_offset = self.client.scroll(
            self._existing(name),
            scroll_filter=body.filter,
            limit=body.limit if body.limit is not None else 10,
            order_by=body.order_by,
            offset=body.offset,
            with_payload=body.with_payload if body.with_payload is not None else True,
            with_vectors=body.with_vector if body.with_vector is not None else False,
        )
        return m.ScrollResult(points=points, next_page_offset=next_offset)

    def count(self, name: str, body: m.CountRequest) -> Any:
        return self.client.count(self._existing(name), count_filter=body.filter, exact=body.exact is not False)

    def retrieve(self, name: str, body: m.PointRequest) -> Any:
        return self.client.retrieve(
            self._existing(name),
            body.ids,
            with_payload=body.with_payload if body.with_payload is not None else True,
            with_vectors=body.with_vector if body.with_vector is not None else False,
        )

    def query_points(self, name: str, body: m.QueryRequest) -> Any:
        return self.client.query_batch_points(self._existing(name), [_query_defaults(body)])[0]

    def query_batch_points(self, name: str, body: m.QueryRequestBatch) -> Any:
        return self.client.query_batch_points(self._existing(name), [_query_defaults(r) for r in body.searches])


def _query_defaults(request: m.QueryRequest) -> m.QueryRequest:
    """Qdrant's defaults for what a query request leaves out: no payload, no vectors."""
    return request.model_copy(
        update={"with_payload": request.with_payload or False, "with_vector": request.with_vector or False}
    )


def _envelope(result: Any, started: float) -> JSONResponse:
    return JSONResponse({"result": to_jsonable_python(result), "status": "ok", "time": time.perf_counter() - started})


def _error(error: QdrantError, started: float) -> JSONResponse:
    return JSONResponse({"status": {"error": error.message}, "time": time.perf_counter() - started}, status_code=error.status_code)


def build_app(path: Path) -> Starlette:
    """The stand-in as an ASGI app whose engine keeps its data in ``path``."""
    standin = StandIn(Path(path))

    def route(url: str, method: str, handler: Callable[[Any, Any], Any], body_type: Any = None) -> Route:
        adapter = TypeAdapter(body_type) if body_type is not None else None

        def locked(name: str | None, body: Any) -> Any:
            with standin.lock:
                return handler(name, body)

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            try:
                body = None
                if adapter is not None:
                    try:
                        body = adapter.validate_json(await request.body())
                    except ValidationError as error:
                        raise QdrantError(400, f"Json deserialize error: {error}") from None
                try:
                    result = await run_in_threadpool(locked, request.path_params.get("collection_name"), body)
                except ValueError as error:
                    raise _from_engine_error(error) from None
                except QdrantError:
                    raise
                except Exception as error:  # an engine failure: say what, in Qdrant's shape
                    raise QdrantError(500, f"Service internal error: {type(error).__name__}: {error}") from None
            except QdrantError as error:
                return _error(error, started)
            return _envelope(result, started)

        return Route(url, endpoint, methods=[method])

    async def root(request: Request) -> Response:
        return JSONResponse({"title": "qdrant - vector search engine", "version": QDRANT_VERSION, "commit": None})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("healthz check passed")

    async def unsupported(request: Request) -> Response:
        error = QdrantError(404, f"{request.method} {request.url.path} is not supported by the Qdrant stand-in")
        return _error(error, time.perf_counter())

    c = "/collections/{collection_name}"
    routes = [
        Route("/", root, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/livez", healthz, methods=["GET"]),
        Route("/readyz", healthz, methods=["GET"]),
        route("/collections", "GET", standin.get_collections),
        route("/aliases", "GET", standin.get_aliases),
        # before {collection_name}: "aliases" is not a collection here
        route("/collections/aliases", "POST", standin.update_aliases, m.ChangeAliasesOperation),
        route(c, "GET", standin.get_collection),
        route(c, "PUT", standin.create_collection, m.CreateCollection),
        route(c, "DELETE", standin.delete_collection),
        route(f"{c}/exists", "GET", standin.collection_exists),
        route(f"{c}/aliases", "GET", standin.get_collection_aliases),
        route(f"{c}/index", "PUT", standin.create_payload_index, m.CreateFieldIndex),
        route(f"{c}/points", "PUT", standin.upsert, m.PointInsertOperations),
        route(f"{c}/points", "POST", standin.retrieve, m.PointRequest),
        route(f"{c}/points/delete", "POST", standin.delete, m.PointsSelector),
        route(f"{c}/points/payload", "POST", standin.set_payload, m.SetPayload),
        route(f"{c}/points/payload", "PUT", standin.overwrite_payload, m.SetPayload),
        route(f"{c}/points/payload/delete", "POST", standin.delete_payload, m.DeletePayload),
        route(f"{c}/points/scroll", "POST", standin.scroll, m.ScrollRequest),
        route(f"{c}/points/count", "POST", standin.count, m.CountRequest),
        route(f"{c}/points/query", "POST", standin.query_points, m.QueryRequest),
        route(f"{c}/points/query/batch", "POST", standin.query_batch_points, m.QueryRequestBatch),
        # last: a known path with another method lands here too, not on a bare 405
        Route("/{path:path}", unsupported, methods=_ALL_METHODS),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        yield
        standin.close()  # releases the folder's lock for the next stand-in

    return Starlette(routes=routes, lifespan=lifespan)


# -------------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_standin(path: Path | str, port: int | None = None, timeout: float = 60) -> tuple[str, subprocess.Popen]:
    """Start a stand-in process on ``path`` (a free port unless ``port``) and return its
    URL and process once ``/healthz`` answers. Stop it with :func:`stop_standin`."""
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.qdrant_standin", "--port", str(port), "--path", str(path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_healthy(proc, url, timeout=timeout)
    except BaseException:
        stop_standin(proc)
        raise
    return url, proc


def stop_standin(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Stop a stand-in gracefully (it closes its engine), killing it if it hangs."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()


@contextlib.contextmanager
def running_standin(path: Path | str, port: int | None = None) -> Iterator[str]:
    """``with running_standin(tmp_path) as url:`` a stand-in for the block's duration."""
    url, proc = start_standin(path, port)
    try:
        yield url
    finally:
        stop_standin(proc)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.helpers.qdrant_standin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=6333)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--path", type=Path, required=True, help="folder the engine keeps its data in")
    args = parser.parse_args(argv)
    # local mode's warnings about what it ignores are said once, in this module's docstring
    for message in _LOCAL_MODE_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=UserWarning)
    uvicorn.run(build_app(args.path), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
