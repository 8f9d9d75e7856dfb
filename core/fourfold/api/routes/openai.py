"""OpenAI-compatible ``POST /v1/chat/completions``, ``GET /v1/models`` and
``GET /v1/models/{model}``.

``model`` is the domain. The last user message is the question, earlier user and
assistant messages are the history; system messages are ignored (each domain's prompt
strategy writes its own). Besides OpenAI's fields, a completion carries ``citations``
(the sources cited as [n]) and ``fourfold`` (index version, timings, check flags); a
stream carries them on its last chunk.

``usage`` holds the generator's counts (its tokenizer's tokens; words for the extractive
generator); ``finish_reason`` is ``length`` when the generator stopped at ``max_tokens``.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import StreamingResponse

from fourfold.api.answering import answered, check_question, limits_for, sse, stream_events
from fourfold.api.deps import AllowedDomainsDep, AssistantsDep, check_domain_access
from fourfold.api.errors import ERROR_RESPONSES, ApiError
from fourfold.api.schemas import ChatCompletion, ChatCompletionRequest, ModelCard, ModelList, sse_schema
from fourfold.answering import answer
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


@router.get(
    "/models/{model}",
    response_model=ModelCard,
    summary="One domain, as a model",
    responses={401: ERROR_RESPONSES[401], 403: ERROR_RESPONSES[403], 404: ERROR_RESPONSES[404], 422: ERROR_RESPONSES[422]},
)
def retrieve_model(
    model: Annotated[str, Path(description="The domain's name.", max_length=100)],
    assistants: AssistantsDep,
    allowed: AllowedDomainsDep,
) -> ModelCard:
    domain = check_domain_access(assistants, allowed, model, param="model")
    return ModelCard(id=domain.name, created=_STARTED, title=domain.title, description=domain.manifest.description)


def _refuse_unserved(body: ChatCompletionRequest) -> None:
    """400 for what a checked answer cannot promise."""
    if body.response_format is not None and body.response_format.type != "text":
        raise ApiError(
            400,
            f"response_format: type '{body.response_format.type}' is not supported; answers are checked text, "
            "so only {\"type\": \"text\"} is accepted",
            code="unsupported_response_format",
            param="response_format",
        )


def _usage(result: Answer) -> dict[str, int]:
    usage = result.usage or {}
    read, made = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    return {"prompt_tokens": read, "completion_tokens": made, "total_tokens": read + made}


def _finish(result: Answer) -> str:
    return "length" if (result.usage or {}).get("finish_reason") == "length" else "stop"


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
        "usage": result.usage,
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
    _refuse_unserved(body)
    question, history = _conversation(body)
    question = check_question(assistants, domain, question, param="messages")
    limits = limits_for(body.max_completion_tokens or body.max_tokens)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not body.stream:
        result = answered(answer(domain, question, history=history, limits=limits))
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": domain.name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text}, "finish_reason": _finish(result)}],
            "usage": _usage(result),
            "citations": [c.__dict__ for c in result.citations],
            "fourfold": _extra(result),
        }

    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(delta: dict | None, finish: str | None = None, **extra) -> str:
        return sse({
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": domain.name,
            # As OpenAI does: with include_usage, a last chunk without choices carries usage.
            "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
            **({"usage": None} if include_usage and "usage" not in extra else {}),
            **extra,
        })

    def events():
        yield chunk({"role": "assistant", "content": ""})
        for item in stream_events(domain, question, history, limits):
            if isinstance(item, str):
                yield chunk({"content": item})
            elif isinstance(item, Answer):
                yield chunk({}, _finish(item), citations=[c.__dict__ for c in item.citations], fourfold={**_extra(item), "text": item.text})
                if include_usage:
                    yield chunk(None, usage=_usage(item))
            else:
                yield sse(item)
        yield sse("[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
