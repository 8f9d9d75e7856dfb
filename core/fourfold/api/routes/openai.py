"""OpenAI-compatible ``POST /v1/chat/completions`` and ``GET /v1/models``.

``model`` is the domain. The last user message is the question, earlier user and
assistant messages are the history; system messages are ignored (each domain's prompt
strategy writes its own). Besides OpenAI's fields, a completion carries ``citations``
(the sources cited as [n]) and ``fourfold`` (index version, timings, check flags); a
stream carries them on its last chunk.
"""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from fourfold.api.answering import check_question, limits_for, sse, stream_events
from fourfold.api.deps import AllowedDomainsDep, AssistantsDep, check_domain_access
from fourfold.api.errors import ERROR_RESPONSES, ApiError
from fourfold.api.schemas import ChatCompletion, ChatCompletionRequest, ModelCard, ModelList, sse_schema
from fourfold.runtime import answer
from fourfold.types import Answer, Message

router = APIRouter(prefix="/v1", tags=["openai"])

_STARTED = int(time.time())


@router.get("/models", response_model=ModelList, summary="Domains this token opens, as models", responses={401: ERROR_RESPONSES[401]})
def list_models(assistants: AssistantsDep, allowed: AllowedDomainsDep) -> ModelList:
    cards = [
        ModelCard(id=name, created=_STARTED, title=d.title, description=d.manifest.description)
        for name, d in sorted(assistants.domains.items())
        if name in allowed
    ]
    return ModelList(data=cards)


def _conversation(body: ChatCompletionRequest) -> tuple[str, list[Message]]:
    turns = [(m.role, m.text()) for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user":
        raise ApiError(422, "messages: the last user or assistant message must be from the user (it is the question)", code="no_question", param="messages")
    question = turns[-1][1]
    history = [Message(role, text) for role, text in turns[:-1] if text]  # type: ignore[arg-type]
    return question, history


def _extra(result: Answer) -> dict:
    return {
        "domain": result.domain,
        "index_version": result.index_version,
        "timings": result.timings,
        "flags": result.flags,
        "sentences": result.sentences,
        "related": [c.__dict__ for c in result.related],
        "answerability": result.answerability,
    }


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="Chat completion (OpenAI-compatible); model = domain",
    responses={**ERROR_RESPONSES, 200: {"description": "A chat completion, or with stream=true server-sent "
                                        "chat.completion.chunk events ending with data: [DONE].",
                                        "content": {"text/event-stream": sse_schema(None, "data: a chat.completion.chunk (the last one "
                                        "with citations and fourfold), or {\"error\": …}, then [DONE].")}}},
)
def chat_completions(body: ChatCompletionRequest, assistants: AssistantsDep, allowed: AllowedDomainsDep):
    domain = check_domain_access(assistants, allowed, body.model, param="model")
    question, history = _conversation(body)
    question = check_question(assistants, domain, question, param="messages")
    limits = limits_for(body.max_completion_tokens or body.max_tokens)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not body.stream:
        result = answer(domain, question, history=history, limits=limits)
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": domain.name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text}, "finish_reason": "stop"}],
            "usage": None,
            "citations": [c.__dict__ for c in result.citations],
            "fourfold": _extra(result),
        }

    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        return sse({
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": domain.name,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        })

    def events():
        yield chunk({"role": "assistant", "content": ""})
        for item in stream_events(domain, question, history, limits):
            if isinstance(item, str):
                yield chunk({"content": item})
            elif isinstance(item, Answer):
                yield chunk({}, "stop", citations=[c.__dict__ for c in item.citations], fourfold={**_extra(item), "text": item.text})
            else:
                yield sse(item)
        yield sse("[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
