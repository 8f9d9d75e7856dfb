"""``POST /v1/domains/{domain}/ask``: a question in, an answer with citations out
(or a stream of server-sent events with ``"stream": true``)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from fourfold.api.answering import answered, check_question, limits_for, sse, stream_events
from fourfold.api.deps import AssistantsDep, DomainDep
from fourfold.api.errors import ERROR_RESPONSES
from fourfold.api.schemas import AnswerOut, AskRequest, sse_schema
from fourfold.answering import answer
from fourfold.types import Answer, Message, SearchFilters

router = APIRouter(prefix="/v1/domains", tags=["domains"])

_STREAM_DOC = {
    "text/event-stream": sse_schema(
        ["delta", "answer", "error"],
        "'delta' events carry {\"text\": …} pieces; one 'answer' event carries the AnswerOut; "
        "'error' carries {\"error\": …} when answering fails after the stream began.",
    )
}


@router.post(
    "/{domain}/ask",
    response_model=AnswerOut,
    summary="Ask a domain a question",
    responses={**ERROR_RESPONSES, 200: {"description": "The answer (JSON), or with stream=true server-sent events: "
                                        "'delta' ({text}), then 'answer' (the AnswerOut) or 'error' ({error}).",
                                        "content": _STREAM_DOC}},
)
def ask(body: AskRequest, domain: DomainDep, assistants: AssistantsDep):
    question = check_question(assistants, domain, body.question)
    history = [Message(m.role, m.content) for m in body.history]
    filters = None
    if body.filters is not None:
        filters = SearchFilters(
            source_prefix=body.filters.source_prefix,
            file_types=tuple(t.lower().lstrip(".") for t in body.filters.file_types),
            tags=tuple(body.filters.tags),
        )
    limits = limits_for(body.max_tokens)
    if not body.stream:
        result = answered(answer(domain, question, history=history, limits=limits, top_k=body.top_k, filters=filters))
        return result.to_dict()

    def events():
        for item in stream_events(domain, question, history, limits, top_k=body.top_k, filters=filters):
            if isinstance(item, str):
                yield sse({"text": item}, "delta")
            elif isinstance(item, Answer):
                yield sse(item.to_dict(), "answer")
            else:
                yield sse(item, "error")

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
