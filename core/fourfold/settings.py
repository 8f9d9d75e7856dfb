"""Process settings, read from ``FOURFOLD_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from fourfold.errors import ConfigError

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """Everything a fourfold process reads from its environment.

    Each field is read from ``FOURFOLD_<FIELD>`` (e.g. ``FOURFOLD_HOME``).
    """

    model_config = SettingsConfigDict(env_prefix="FOURFOLD_", extra="ignore")

    home: Path = Field(Path(".fourfold"), description="State dir: indexes, models, artifacts, broker database.")
    broker_url: str | None = Field(
        None, description="Celery broker, e.g. redis://host:6379/0. Unset: an SQLite broker in the state dir."
    )
    result_backend: str | None = Field(
        None, description="Celery result backend. Unset: the broker's Redis, or SQLite in the state dir."
    )
    qdrant_url: str | None = Field(
        None, description="Qdrant server URL. Unset: the embedded engine (qdrant-edge) in the state dir."
    )
    qdrant_api_key: str | None = Field(None, description="API key for the Qdrant server.")
    upload_s3_url: str | None = Field(
        None,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$",
        description="Where documents uploaded over HTTP are kept, as s3://bucket/prefix (any S3-compatible store; "
        "credentials from the AWS_* environment). Unset: a folder in the domain's state dir, which only one host sees, "
        "so it is required when FOURFOLD_QDRANT_URL is set.",
    )
    upload_s3_endpoint: str | None = Field(
        None, description="Endpoint of the S3-compatible service of FOURFOLD_UPLOAD_S3_URL other than AWS (MinIO: http://host:9000)."
    )
    load_plugins: str | None = Field(
        None,
        description="Comma-separated third-party plugins allowed to load (entry-point or distribution names). "
        "Unset: every installed plugin. Empty: none. Builtins always load.",
    )
    disable_plugins: str | None = Field(
        None, description="Comma-separated plugins (builtin or third-party) not to load."
    )
    trace_plugins: bool = Field(False, description="Log every hook call with plugin and duration.")
    metrics_token: str | None = Field(
        None, description="Bearer token Prometheus scrapes the API's /metrics with (unset: /metrics is off)."
    )
    log_questions: bool = Field(False, description="Add the question to request logs (debugging only; off by default).")
    torch_threads: int | None = Field(None, ge=1, description="Threads torch may use (default: all cores).")
    namespace: str = Field(
        "fourfold",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
        description="Prefix of queue names and Redis keys, so several deployments can share one Redis.",
    )
    task_time_limit: int = Field(
        7200, ge=10, description="Seconds a background task may run before it is killed (soft limit: 90% of it)."
    )
    max_deliveries: int = Field(
        3, ge=1, description="Deliveries of a task that keeps crashing its worker before it is recorded as dead."
    )
    lease_seconds: int = Field(
        30, ge=2, description="A domain's writer lease expires this long after its holder stops renewing it."
    )
    worker_max_memory_mb: int = Field(
        4096, ge=64, description="A worker child that grew past this is replaced after its current task."
    )
    first_build: bool = Field(
        True,
        description="When worker, beat or serve (with a broker) starts, queue a refresh of each of its domains that has "
        "no published index (one per domain for the whole deployment). false: leave them until a refresh is requested "
        "or scheduled.",
    )
    visibility_timeout: int | None = Field(
        None,
        ge=1,
        description="Seconds before Redis hands a task whose worker vanished to another worker, when no "
        "worker starts meanwhile (a starting worker requeues such tasks at once). "
        "Unset: task_time_limit plus 10 minutes.",
    )

    @property
    def state_dir(self) -> Path:
        return self.home.expanduser().resolve()

    def domain_dir(self, domain: str) -> Path:
        return self.state_dir / "domains" / domain

    @property
    def allowed_plugins(self) -> set[str] | None:
        """Third-party plugins allowed to load; None means all."""
        return _names(self.load_plugins)

    @property
    def disabled_plugins(self) -> set[str]:
        return _names(self.disable_plugins) or set()


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {n.strip() for n in value.split(",") if n.strip()}


@lru_cache(maxsize=1)
def _cached() -> Settings:
    return _load()


def _load() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"environment variable FOURFOLD_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError("; ".join(lines)) from None


def get_settings(*, fresh: bool = False) -> Settings:
    """The process's settings; ``fresh=True`` re-reads the environment."""
    if fresh:
        _cached.cache_clear()
    return _cached()
