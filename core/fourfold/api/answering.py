"""What the ask and chat-completions routes share: limits, answer serialisation, SSE."""

from __future__ import annotations

import json
from typing import Any, Iterator

from fourfold.api.assistants import Assistants
from fourfold import metrics
from fourfold.api.errors import ApiError, error_body, error_for_exception
from fourfold.api.observe import note_answer, note_question
from fourfold.domain import Domain
from fourfold.answering import stream_answer
from fourfold.types import Answer, GenerationLimits, Message

__all__ = ["check_question", "answer_dict", "answered", "limits_for", "sse", "stream_events"]


# What JSON Schema (ECMA-262) calls white space: a question of these alone is empty. Python's
# str.strip() also strips control characters such as U+0085, which the schema's "\\S"
# counts as content, so a request valid by the schema would be refused.
_WHITE_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def check_question(assistants: Assistants, domain: Domain, question: str, *, param: str = "question") -> str:
    question = question.strip(_WHITE_SPACE)
    note_question(question)
    if not question:
        raise ApiError(422, f"{param}: the question is empty", code="empty_question", param=param)
    limit = assistants.max_question_chars(domain)
    if len(question) > limit:
        raise ApiError(
            422,
            f"{param}: the question has {len(question)} characters; domain '{domain.name}' accepts at most {limit} (serve.max_question_chars)",
            code="question_too_long",
            param=param,
        )
    return question


def limits_for(max_tokens: int | None) -> GenerationLimits:
    default = GenerationLimits()
    return GenerationLimits(max_tokens=max_tokens or default.max_tokens, timeout_s=default.timeout_s)


def answer_dict(answer: Answer) -> dict[str, Any]:
    return answer.to_dict()


def answered(result: Answer) -> Answer:
    """``result``, recorded in the metrics (and on the request's span when tracing)."""
    metrics.observe_answer(result)
    note_answer(result.timings, result.flags)
    return result


def sse(data: Any, event: str | None = None) -> str:
    """One server-sent event."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in payload.split("\n")) + "\n"


def stream_events(domain: Domain, question: str, history: list[Message], limits: GenerationLimits, **search: Any) -> Iterator[str | Answer | dict]:
    """Pieces of text, then the Answer — or an error body when answering fails."""
    try:
        for item in stream_answer(domain, question, history=history, limits=limits, **search):
            if isinstance(item, Answer):
                answered(item)
            yield item
    except Exception as exc:  # headers are sent already: the error travels as an event
        status, message, code = error_for_exception(exc)
        body = error_body(status, message, code)
        body["error"]["status"] = status
        yield body
