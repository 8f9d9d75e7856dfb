"""Answering a question: retrieve → prompt → generate → check citations.

fourfold's own ``answer_question`` implementation lives here and is registered on the
plugin host like any plugin (:func:`register_core_answering`), so plugin wrappers
(audit, redaction, guardrails) wrap it.

Two ways in:

- :func:`answer` returns the finished :class:`Answer`;
- :func:`stream_answer` yields the answer's text as the generator produces it, then the
  finished :class:`Answer` (whose text is authoritative: citation checks and wrappers may
  have changed what was streamed).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pluggy

from fourfold.calling import call_component, component_error
from fourfold.errors import ComponentError, FourfoldError, PluginError
from fourfold.instructions import remove_instructions
from fourfold.trust.answerability import Decision, Features
from fourfold.trust.checker import AnswerChecker, CheckPolicy
from fourfold.trust.text import question_words
from fourfold.types import Answer, Citation, GeneratedText, GenerationLimits, Message, Passage, SearchFilters, count_words

if TYPE_CHECKING:
    from fourfold.domain import Domain
    from fourfold.plugins import PluginHost

__all__ = [
    "AnswerRequest",
    "AnswerCancelled",
    "CORE_PLUGIN_NAME",
    "CoreAnswering",
    "answer",
    "stream_answer",
    "citations_for",
    "register_core_answering",
]

hookimpl = pluggy.HookimplMarker("fourfold")

CORE_PLUGIN_NAME = "fourfold-core"
"""The name :class:`CoreAnswering` is registered under on a plugin host."""

SNIPPET_CHARS = 300


class AnswerCancelled(Exception):
    """The consumer of a streamed answer went away (e.g. the HTTP client disconnected)."""


@dataclass
class AnswerRequest:
    """One question to one domain.

    :ivar domain: the :class:`fourfold.Domain` answering.
    :ivar question: the user's question (wrappers may rewrite it).
    :ivar history: earlier turns of the conversation, oldest first.
    :ivar limits: generation limits for this request (the generator's own configured
        limits still cap them).
    :ivar top_k: passages to retrieve (None: the retriever's ``top_k``).
    :ivar filters: metadata filters for retrieval.
    :ivar on_text: when set, the answer is generated in streaming mode and each new piece
        of visible text is passed here as it is produced.
    """

    domain: "Domain"
    question: str
    history: list[Message] = field(default_factory=list)
    limits: GenerationLimits = field(default_factory=GenerationLimits)
    top_k: int | None = None
    filters: SearchFilters | None = None
    on_text: Callable[[str], None] | None = None


def citations_for(numbers: list[int], passages: list[Passage]) -> list[Citation]:
    """Citation records for 1-based passage ``numbers`` (invalid numbers are skipped)."""
    out = []
    for n in numbers:
        if 1 <= n <= len(passages):
            p = passages[n - 1]
            text, _ = remove_instructions(p.chunk.text)  # a snippet never shows a planted instruction
            snippet = text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"
            out.append(
                Citation(
                    n=n,
                    source=p.chunk.source,
                    title=p.chunk.title,
                    heading=p.chunk.heading,
                    page=p.chunk.page,
                    snippet=snippet,
                    score=round(float(p.score), 6),
                    url=p.chunk.url,
                    metadata=dict(p.chunk.metadata),
                )
            )
    return out


def _named(component, method: str, exc: Exception) -> ComponentError:
    return component_error(component, f"{method}() raised {type(exc).__name__}: {exc}")


class CoreAnswering:
    """fourfold's implementation of the ``answer_question`` hook.

    For every strategy that retrieves, whatever the generator: retrieve; refuse when the
    passages do not answer (:mod:`fourfold.trust.answerability`); build the prompt;
    generate; check the answer sentence by sentence (:mod:`fourfold.trust.checker`),
    passing each checked sentence to ``on_text`` as soon as it is final. What a stream
    shows is therefore exactly the answer's text.
    """

    @hookimpl(trylast=True)
    def answer_question(self, request: AnswerRequest) -> Answer:
        domain = request.domain
        timings: dict[str, float] = {}
        started = time.perf_counter()
        strategy = domain.prompt_strategy
        passages: list[Passage] = []
        version: str | None = None
        if strategy.uses_retrieval:
            passages, version = domain.search(request.question, top_k=request.top_k, filters=request.filters)
            timings["retrieve_ms"] = (time.perf_counter() - started) * 1000
            t = time.perf_counter()
            decision = _decide(domain, request.question, passages, version)
            timings["answerability_ms"] = (time.perf_counter() - t) * 1000
            if decision is not None and not decision.answerable:
                return _refusal(request, passages, version, decision, timings, started)
        t = time.perf_counter()
        prompt = call_component(strategy, "build", request.question, passages, request.history)
        t2 = time.perf_counter()
        timings["prompt_ms"] = (t2 - t) * 1000
        if not strategy.uses_retrieval:
            return self._unchecked(request, prompt, version, timings, started, t2)

        checker = AnswerChecker(request.question, prompt.passages, _policy(domain, strategy, prompt))
        raw = self._generate(request, prompt, t2, timings, checker)
        t3 = time.perf_counter()
        timings["generate_ms"] = (t3 - t2) * 1000 - timings.get("check_ms", 0.0)
        try:
            visible = strategy.visible_text(raw, prompt)
        except Exception as exc:
            raise _named(strategy, "visible_text", exc) from exc
        rest = checker.close(visible)
        if rest and request.on_text is not None:
            timings.setdefault("first_text_ms", (time.perf_counter() - t2) * 1000)
            request.on_text(rest)
        timings["check_ms"] = timings.get("check_ms", 0.0) + (time.perf_counter() - t3) * 1000
        timings["total_ms"] = (time.perf_counter() - started) * 1000
        flags = list(prompt.metadata.get("flags") or [])
        if prompt.metadata.get("redacted_sentences"):
            flags.append(f"redacted-instructions:{prompt.metadata['redacted_sentences']}")
        return Answer(
            text=checker.text,
            citations=citations_for(checker.cited, prompt.passages),
            domain=domain.name,
            index_version=version,
            timings={k: round(v, 3) for k, v in timings.items()},
            flags=flags + checker.flags,
            sentences=[s.to_dict() for s in checker.sentences if s.text or s.verdict != "supported"],
            answerability=decision.to_dict() if decision is not None else None,
            usage=usage_of(raw, prompt),
        )

    def _unchecked(self, request: AnswerRequest, prompt, version, timings, started, t2) -> Answer:
        """Strategies without passages (``plain``): nothing to check against. The stream
        shows the strategy's visible text; the final text is what ``finish`` returns."""
        generator = request.domain.generator
        if request.on_text is None:
            raw = call_component(generator, "generate", prompt, request.limits)
        else:
            raw = self._stream_visible(request, prompt, t2, timings)
        timings["generate_ms"] = (time.perf_counter() - t2) * 1000
        text, cited, flags = call_component(request.domain.prompt_strategy, "finish", raw, prompt)
        timings["total_ms"] = (time.perf_counter() - started) * 1000
        return Answer(
            text=text,
            citations=citations_for(cited, prompt.passages),
            domain=request.domain.name,
            index_version=version,
            timings={k: round(v, 3) for k, v in timings.items()},
            flags=list(flags) + ["unchecked"],
            usage=usage_of(raw, prompt),
        )

    @staticmethod
    def _stream_visible(request: AnswerRequest, prompt, t0: float, timings: dict[str, float]) -> str:
        shown = ""
        strategy = request.domain.prompt_strategy

        def show(visible: str) -> None:
            nonlocal shown
            # Only ever append: text already shown cannot be taken back mid-stream.
            if len(visible) > len(shown) and visible.startswith(shown):
                assert request.on_text is not None
                request.on_text(visible[len(shown) :])
                shown = visible

        return CoreAnswering._consume(request, prompt, t0, timings, lambda raw: show(strategy.visible_text(raw, prompt)))

    @staticmethod
    def _consume(request: AnswerRequest, prompt, t0: float, timings: dict[str, float], on_raw) -> str:
        """Stream from the generator, calling ``on_raw`` with the text so far after each
        piece; returns the whole raw text. Stops when ``on_raw`` returns True."""
        generator = request.domain.generator
        raw = ""
        usage = None
        try:
            pieces = iter(generator.stream(prompt, request.limits))
        except Exception as exc:
            raise _named(generator, "stream", exc) from exc
        try:
            while True:
                try:
                    piece = next(pieces)
                except StopIteration:
                    break
                except FourfoldError:
                    raise
                except Exception as exc:
                    raise _named(generator, "stream", exc) from exc
                usage = getattr(piece, "usage", None) or usage
                if not piece:
                    continue
                if "first_token_ms" not in timings:
                    timings["first_token_ms"] = (time.perf_counter() - t0) * 1000
                raw += piece
                try:
                    stop = on_raw(raw)
                except (FourfoldError, AnswerCancelled):
                    raise
                except Exception as exc:
                    raise _named(request.domain.prompt_strategy, "visible_text", exc) from exc
                if stop:
                    break
        finally:
            # Also when the listener went away (AnswerCancelled): stops the model now.
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
        return GeneratedText(raw, usage)

    @staticmethod
    def _generate(request: AnswerRequest, prompt, t0: float, timings: dict[str, float], checker: AnswerChecker) -> str:
        """Generate, feeding the checker each time the visible text grows; checked
        sentences go to ``request.on_text`` as soon as they are final."""
        strategy = request.domain.prompt_strategy
        if request.on_text is None:
                return call_component(request.domain.generator, "generate", prompt, request.limits)

        def check(raw: str) -> bool:
            visible = strategy.visible_text(raw, prompt)
            t = time.perf_counter()
            checked = checker.feed(visible)
            timings["check_ms"] = timings.get("check_ms", 0.0) + (time.perf_counter() - t) * 1000
            if checked:
                timings.setdefault("first_text_ms", (time.perf_counter() - t0) * 1000)
                assert request.on_text is not None
                request.on_text(checked)
            return checker.refused  # a refusal: the rest is not needed

        return CoreAnswering._consume(request, prompt, t0, timings, check)


def usage_of(raw: str | None, prompt) -> dict[str, Any]:
    """The answer's ``usage``: what the generator reported with its text
    (:class:`fourfold.GeneratedText`), else words counted in its prompt and its text;
    zeros when nothing was generated."""
    if raw is None:
        return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "unit": "tokens", "finish_reason": "stop"}
    reported = getattr(raw, "usage", None)
    if reported is not None:
        read, made, at_limit, unit = reported.prompt_tokens, reported.completion_tokens, reported.stopped_at_limit, reported.unit
    else:
        read = sum(count_words(m.content) for m in prompt.messages) if prompt is not None else 0
        made, at_limit, unit = count_words(raw), False, "words"
    return {
        "prompt_tokens": int(read),
        "completion_tokens": int(made),
        "total_tokens": int(read) + int(made),
        "unit": unit,
        "finish_reason": "length" if at_limit else "stop",
    }


def _policy(domain: "Domain", strategy, prompt) -> CheckPolicy:
    """The strategy's checking policy, with the manifest's trust settings on top."""
    policy = None
    make = getattr(strategy, "check_policy", None)
    if make is not None:
        try:
            policy = make(prompt)
        except Exception as exc:
            raise _named(strategy, "check_policy", exc) from exc
    if policy is None:
        policy = CheckPolicy(no_answer=domain.manifest.trust.refusal)
    trust = domain.manifest.trust
    policy.refusal = trust.refusal
    if trust.unsupported is not None:
        policy.unsupported = trust.unsupported
    if trust.min_support is not None:
        policy.min_support = trust.min_support
    if trust.verifier_mode != "rules":
        policy.verify = domain.trust.claim_verifier()
        policy.verifier_mode = trust.verifier_mode
    return policy


def _decide(domain: "Domain", question: str, passages: list[Passage], version: str | None):
    if domain.manifest.trust.answerability == "off":
        return None
    if not passages:
        return Decision(False, 0.0, 1.0, Features(0.0, 0.0, 0.0, 0.0, 1.0, sorted(question_words(question))))
    decider = domain.trust.for_version(version)
    return decider.decide(question, passages) if decider is not None else None


def _refusal(request: AnswerRequest, passages: list[Passage], version, decision, timings, started) -> Answer:
    """The documents do not answer: say so, and list the closest passages as related
    reading (not as support: nothing in the text cites them)."""
    text = request.domain.manifest.trust.refusal
    if request.on_text is not None:
        request.on_text(text)
    timings["total_ms"] = (time.perf_counter() - started) * 1000
    related = passages[:3]
    prepare = getattr(request.domain.prompt_strategy, "prepare_passages", None)
    if prepare is not None:  # planted instructions are not shown as related reading either
        try:
            related = prepare(related)[0]
        except Exception:  # noqa: BLE001 - then no related reading at all
            related = []
    return Answer(
        text=text,
        citations=[],
        domain=request.domain.name,
        index_version=version,
        timings={k: round(v, 3) for k, v in timings.items()},
        flags=["not-in-documents"],
        sentences=[{"text": text, "verdict": "refusal", "citations": []}],
        related=citations_for(list(range(1, len(related) + 1)), related),
        answerability=decision.to_dict(),
        usage=usage_of(None, None),
    )


_registering = threading.Lock()


def register_core_answering(host: "PluginHost") -> None:
    """Register :class:`CoreAnswering` on ``host`` as plugin ``fourfold-core``, once.

    The host knows nothing of answering (it sits below it); :func:`answer` registers
    fourfold's own implementation on the host of the domain it is given before calling
    the hook, so plugin wrappers of ``answer_question`` wrap it like any plugin's.
    """
    if host.pm.get_plugin(CORE_PLUGIN_NAME) is not None:
        return
    with _registering:
        if host.pm.get_plugin(CORE_PLUGIN_NAME) is None:
            host.pm.register(CoreAnswering(), name=CORE_PLUGIN_NAME)


def _wrapped_error(domain: "Domain", exc: Exception) -> PluginError:
    """An exception from an ``answer_question`` wrapper, naming the plugins that wrap it."""
    wrappers = [
        impl.plugin_name
        for impl in domain.host.hook.answer_question.get_hookimpls()
        if impl.plugin_name != CORE_PLUGIN_NAME
    ]
    names = ", ".join(f"'{n}'" for n in wrappers) or "none"
    return PluginError(
        f"answering in domain '{domain.name}' failed: {type(exc).__name__}: {exc} (plugins wrapping answer_question: {names})",
        plugin=wrappers[0] if len(wrappers) == 1 else None,
    )


def answer(
    domain: "Domain",
    question: str,
    *,
    history: list[Message] | None = None,
    limits: GenerationLimits | None = None,
    top_k: int | None = None,
    filters: SearchFilters | None = None,
    on_text: Callable[[str], None] | None = None,
) -> Answer:
    """Answer ``question`` in ``domain`` through the ``answer_question`` hook.

    :raises FourfoldError: :class:`ComponentError` naming the component and plugin that
        failed, :class:`IndexVersionError` when nothing is published, :class:`PluginError`
        when a wrapper failed. Other domains are never affected.
    """
    request = AnswerRequest(
        domain=domain,
        question=question,
        history=list(history or []),
        limits=limits or GenerationLimits(),
        top_k=top_k,
        filters=filters,
        on_text=on_text,
    )
    register_core_answering(domain.host)
    try:
        result = domain.host.hook.answer_question(request=request)
    except (FourfoldError, AnswerCancelled):
        raise
    except Exception as exc:
        raise _wrapped_error(domain, exc) from exc
    if not isinstance(result, Answer):
        raise PluginError(f"answer_question returned {type(result).__name__} for domain '{domain.name}', not an Answer")
    return result


_DONE = object()


def stream_answer(
    domain: "Domain",
    question: str,
    *,
    history: list[Message] | None = None,
    limits: GenerationLimits | None = None,
    top_k: int | None = None,
    filters: SearchFilters | None = None,
) -> Iterator[str | Answer]:
    """Yield pieces of answer text as they are generated, then the finished
    :class:`Answer`. Errors are raised from the iterator (after any text already
    yielded). Closing the iterator early stops the generation."""
    events: queue.Queue = queue.Queue()
    cancelled = threading.Event()

    def on_text(piece: str) -> None:
        if cancelled.is_set():
            raise AnswerCancelled()
        events.put(piece)

    def run() -> None:
        try:
            result = answer(domain, question, history=history, limits=limits, top_k=top_k, filters=filters, on_text=on_text)
            events.put(result)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            events.put(exc)
        finally:
            events.put(_DONE)

    worker = threading.Thread(target=run, name=f"answer-{domain.name}", daemon=True)
    worker.start()
    try:
        while True:
            item = events.get()
            if item is _DONE:
                return
            if isinstance(item, AnswerCancelled) and cancelled.is_set():
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancelled.set()
