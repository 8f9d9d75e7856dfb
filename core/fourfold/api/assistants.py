"""The domains one API process answers for, and who may ask them."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from fourfold.domain import Domain
from fourfold.errors import FourfoldError
from fourfold.domains import known_domains, remember_domain
from fourfold.plugins import PluginHost, get_host
from fourfold.settings import Settings, get_settings
from fourfold.api.tokens import DomainTokens, TokenBook, domain_tokens
from fourfold.uploads import upload_source

__all__ = ["Assistants"]

log = logging.getLogger("fourfold.api")

DEFAULT_MAX_QUESTION_CHARS = 4000


@dataclass
class Assistants:
    """Domains by name, their tokens, and the plugin host that built them.

    :ivar write_tokens: the write tokens of each domain with an ``upload`` source (who
        may upload and delete its documents); :ivar write_book: which domains each opens.
    """

    host: PluginHost
    settings: Settings
    domains: dict[str, Domain] = field(default_factory=dict)
    tokens: dict[str, DomainTokens] = field(default_factory=dict)
    book: TokenBook = field(default_factory=TokenBook)
    write_tokens: dict[str, DomainTokens] = field(default_factory=dict)
    write_book: TokenBook = field(default_factory=TokenBook)

    @classmethod
    def from_manifests(
        cls,
        paths: list[str | Path] | None = None,
        *,
        host: PluginHost | None = None,
        settings: Settings | None = None,
        generate_tokens: bool = True,
    ) -> "Assistants":
        """Load ``paths`` (default: every domain in the state dir's registry).

        :raises FourfoldError: a manifest is invalid, or two manifests share a domain name.
        """
        settings = settings or get_settings()
        host = host or get_host()
        assistants = cls(host=host, settings=settings)
        targets = [Path(p) for p in paths] if paths else list(known_domains(settings).values())
        if not targets:
            raise FourfoldError("no domains to serve: give manifest files, e.g. 'fourfold serve deploy/manifests/legal.yaml'")
        for path in targets:
            domain = Domain.from_file(path, host, settings)
            manifest = domain.manifest
            if manifest.domain in assistants.domains:
                other = assistants.domains[manifest.domain].manifest.path
                raise FourfoldError(f"{path}: domain '{manifest.domain}' is also defined by {other}; domain names must be unique")
            remember_domain(manifest, settings)  # only once it is known not to clash with another manifest
            write = None
            if upload_source(manifest) is not None:
                write = domain_tokens(manifest, settings, generate=generate_tokens, write=True)
            assistants.add(domain, domain_tokens(manifest, settings, generate=generate_tokens), write)
        return assistants

    def add(self, domain: Domain, tokens: DomainTokens, write_tokens: DomainTokens | None = None) -> None:
        """Serve ``domain`` to ``tokens`` (and let ``write_tokens`` change its documents).

        :raises FourfoldError: a write token is also a read token.
        """
        reads = set(tokens.tokens) | {t for known in self.tokens.values() for t in known.tokens}
        writes = set(write_tokens.tokens if write_tokens else ()) | {t for known in self.write_tokens.values() for t in known.tokens}
        if reads & writes:
            raise FourfoldError(
                f"domain '{domain.name}': a token is both a read token (serve.tokens_env) and a write token "
                "(serve.write_tokens_env) of the domains served; write tokens must differ from every read token"
            )
        self.domains[domain.name] = domain
        self.tokens[domain.name] = tokens
        self.book.add(domain.name, tokens.tokens)
        if write_tokens is not None:
            self.write_tokens[domain.name] = write_tokens
            self.write_book.add(domain.name, write_tokens.tokens)

    def max_question_chars(self, domain: Domain) -> int:
        return int(getattr(domain.manifest.serve, "max_question_chars", DEFAULT_MAX_QUESTION_CHARS) or DEFAULT_MAX_QUESTION_CHARS)

    def warm_up(self, report: Callable[[str, float], None] | None = None) -> threading.Thread:
        """Build every domain's components and load its models in one background thread
        (join it to wait), so the first questions neither wait for them nor load them
        in several threads at once. A domain with a published index also runs one
        search, which loads the embedder and the retriever's engine, and gets its
        answerability decision (calibrating it if needed). Failures are logged and left
        for the first request to report.

        :param report: called with each domain's name and the seconds it took, when done.
        """

        def run() -> None:
            from fourfold.components import NullProgress

            for domain in list(self.domains.values()):
                started = time.perf_counter()
                try:
                    domain.prompt_strategy
                    domain.generator.prepare(NullProgress())
                    if domain.manifest.knowledge is not None and domain.prompt_strategy.uses_retrieval:
                        domain.embedder.embed_query("warm up")
                        if domain.index.version is not None:
                            domain.search("warm up", top_k=1)
                            # The answerability decision of the served version: loaded
                            # from the state dir, or calibrated now rather than on a question.
                            domain.trust.for_version(domain.index.version)
                except Exception as exc:  # reported again, with the plugin's name, on use
                    log.warning("warming up domain '%s' failed: %s", domain.name, exc)
                if report is not None:
                    report(domain.name, time.perf_counter() - started)

        thread = threading.Thread(target=run, name="fourfold-warm-up", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Release the index versions this process has open."""
        for domain in self.domains.values():
            index = domain.__dict__.get("index")  # only those opened
            if index is not None:
                try:
                    index.close()
                except Exception as exc:
                    log.warning("closing the index of '%s' failed: %s", domain.name, exc)
