"""Bearer tokens per domain: read tokens, and write tokens for its documents.

A domain's read tokens (asking, status, refresh) come from the environment variable its
manifest names in ``serve.tokens_env`` (comma-separated); its write tokens (uploading
and deleting documents) from ``serve.write_tokens_env``. When that variable is unset —
or the manifest names none — fourfold generates one token, keeps it in the domain's
state folder (mode 0600) and reuses it on every restart, so ``fourfold up`` works out of
the box and prints it. A token is either a read or a write token, never both.

Tokens are compared as SHA-256 digests with :func:`hmac.compare_digest`, against every
domain's tokens, so neither a token's length nor which domain it matched leaks through
timing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from fourfold.errors import ConfigError
from fourfold.files import write_atomic
from fourfold.manifest import Manifest
from fourfold.settings import Settings

__all__ = ["DomainTokens", "TokenBook", "domain_tokens", "token_file"]

TOKEN_FILE = "api-token"
WRITE_TOKEN_FILE = "api-write-token"


def token_file(settings: Settings, domain: str, *, write: bool = False) -> Path:
    """Where the generated (read or write) token of ``domain`` is kept."""
    return settings.domain_dir(domain) / (WRITE_TOKEN_FILE if write else TOKEN_FILE)


@dataclass
class DomainTokens:
    """The tokens that open one domain, and where they came from.

    :ivar origin: ``"env"`` (the manifest's ``serve.tokens_env``), ``"state"`` (kept
        from an earlier run) or ``"generated"`` (made just now).
    """

    domain: str
    tokens: list[str]
    origin: str
    env: str | None = None


def _read_token(path: Path) -> str | None:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return value or None


def domain_tokens(manifest: Manifest, settings: Settings, *, generate: bool = True, write: bool = False) -> DomainTokens:
    """The read tokens of ``manifest``'s domain — or with ``write=True`` its write
    tokens — generating and keeping one when no env var provides any and ``generate``
    is true.

    :raises ConfigError: the env var is set but holds no token, or a token shorter
        than 16 characters.
    """
    key = "write_tokens_env" if write else "tokens_env"
    env = getattr(manifest.serve, key)
    if env and os.environ.get(env) is not None:
        tokens = [t.strip() for t in os.environ[env].split(",") if t.strip()]
        if not tokens:
            raise ConfigError(f"${env} (serve.{key} of domain '{manifest.domain}') is set but holds no token")
        short = [t for t in tokens if len(t) < 16]
        if short:
            raise ConfigError(
                f"${env} (serve.{key} of domain '{manifest.domain}') holds a token of {len(short[0])} characters; "
                "use at least 16 (e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))')"
            )
        return DomainTokens(manifest.domain, tokens, "env", env)
    path = token_file(settings, manifest.domain, write=write)
    kept = _read_token(path)
    if kept:
        return DomainTokens(manifest.domain, [kept], "state", env)
    if not generate:
        return DomainTokens(manifest.domain, [], "none", env)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = f"{'ffw' if write else 'ff'}-{manifest.domain}-{secrets.token_urlsafe(24)}"
    # A secret: private to its owner. Exclusive: two processes starting at once agree on
    # the first token written, and none ever reads a file that is there but still empty.
    try:
        write_atomic(path, token + "\n", mode=0o600, exclusive=True)
    except FileExistsError:
        kept = _read_token(path)
        if kept:
            return DomainTokens(manifest.domain, [kept], "state", env)
        raise ConfigError(f"{path}: token file exists but is empty; delete it to generate a new token") from None
    return DomainTokens(manifest.domain, [token], "generated", env)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass
class TokenBook:
    """Which domains each token opens."""

    _entries: list[tuple[bytes, str]] = field(default_factory=list)

    def add(self, domain: str, tokens: list[str]) -> None:
        self._entries.extend((_digest(t), domain) for t in tokens)

    def domains_for(self, token: str | None) -> set[str]:
        """Domains ``token`` opens (empty: none). Every entry is compared, always."""
        digest = _digest(token or "")
        found: set[str] = set()
        for known, domain in self._entries:
            if hmac.compare_digest(known, digest) and token:
                found.add(domain)
        return found
