"""``openai-compatible``: any server speaking the OpenAI chat-completions API.

vLLM, Ollama, llama.cpp's server, LM Studio, a hosted API — or another fourfold. The
API key comes from an environment variable the manifest names (never from the manifest
itself). Streaming uses server-sent events.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Iterator

import httpx
from pydantic import Field, field_validator

import fourfold

__all__ = ["OpenAICompatible"]


class OpenAICompatibleConfig(fourfold.ComponentConfig):
    base_url: str = Field(description="API root, e.g. http://127.0.0.1:8000/v1 or https://api.example.com/v1.")
    model: str = Field(min_length=1, description="Model name the server knows.")
    api_key_env: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Environment variable holding the API key (unset: no key)."
    )
    max_tokens: int = Field(512, ge=1, le=65536, description="Most new tokens per answer (requests may ask for fewer).")
    timeout_s: float = Field(60.0, gt=0, le=3600, description="Longest time one answer may take.")
    connect_timeout_s: float = Field(5.0, gt=0, le=120, description="Longest wait for a connection.")
    temperature: float = Field(0.0, ge=0, le=2)
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers (not for secrets).")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"'{value}' is not an http(s) URL")
        return value.rstrip("/")


class RemoteError(RuntimeError):
    """The remote server answered with an error."""


class OpenAICompatible(fourfold.Generator):
    """Calls an OpenAI-compatible ``/chat/completions`` endpoint (streaming via SSE)."""

    name = "openai-compatible"
    description = "Any OpenAI-compatible chat API (vLLM, Ollama, llama.cpp server, hosted); key from an env var."
    Config = OpenAICompatibleConfig

    def __init__(self, config=None, context=None):
        super().__init__(config, context)
        cfg = self.config
        if cfg.api_key_env and not os.environ.get(cfg.api_key_env):
            raise fourfold.ConfigError(
                f"generator 'openai-compatible' reads its API key from ${cfg.api_key_env}, which is not set"
            )
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                headers = dict(self.config.headers)
                if self.config.api_key_env:
                    headers["Authorization"] = f"Bearer {os.environ[self.config.api_key_env]}"
                self._client = httpx.Client(
                    base_url=self.config.base_url,
                    headers=headers,
                    timeout=httpx.Timeout(self.config.timeout_s, connect=self.config.connect_timeout_s),
                )
            return self._client

    def _body(self, prompt: fourfold.Prompt, limits: fourfold.GenerationLimits, stream: bool) -> dict[str, Any]:
        return {
            "model": self.config.model,
            "messages": [{"role": m.role, "content": m.content} for m in prompt.messages],
            "max_tokens": max(1, min(limits.max_tokens, self.config.max_tokens)),
            "temperature": self.config.temperature,
            "stream": stream,
        }

    def _timeout(self, limits: fourfold.GenerationLimits) -> httpx.Timeout:
        return httpx.Timeout(min(limits.timeout_s, self.config.timeout_s), connect=self.config.connect_timeout_s)

    def _raise_for(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            body = response.read().decode("utf-8", "replace")
            data = json.loads(body)
            detail = data.get("error", {}).get("message") if isinstance(data.get("error"), dict) else data.get("detail") or body
        except ValueError:
            detail = body
        raise RemoteError(
            f"{self.config.base_url}/chat/completions answered HTTP {response.status_code}: {str(detail)[:300]}"
        )

    def cost_profile(self) -> fourfold.GenerationWork:
        return fourfold.GenerationWork(remote=True, max_tokens=self.config.max_tokens)

    def generate(self, prompt, limits):
        response = self._http().post("/chat/completions", json=self._body(prompt, limits, False), timeout=self._timeout(limits))
        self._raise_for(response)
        data = response.json()
        try:
            text = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise RemoteError(f"{self.config.base_url}/chat/completions returned no choices[0].message.content") from None
        return fourfold.GeneratedText(text, _usage(prompt, text, data.get("usage"), data["choices"][0].get("finish_reason")))

    def stream(self, prompt, limits) -> Iterator[str]:
        with self._http().stream(
            "POST", "/chat/completions", json=self._body(prompt, limits, True), timeout=self._timeout(limits)
        ) as response:
            self._raise_for(response)
            text, usage, finish = "", None, None
            for data in _sse_data(response.iter_lines()):
                if data == "[DONE]":
                    break
                try:
                    event = json.loads(data)
                except ValueError:
                    raise RemoteError(f"{self.config.base_url} sent a stream event that is not JSON: {data[:100]!r}") from None
                if "error" in event:
                    raise RemoteError(f"{self.config.base_url} stream failed: {event['error']}")
                usage = event.get("usage") or usage
                for choice in event.get("choices") or []:
                    finish = choice.get("finish_reason") or finish
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        text += piece
                        yield piece
            yield fourfold.GeneratedText("", _usage(prompt, text, usage, finish))


def _usage(prompt: fourfold.Prompt, text: str, reported: Any, finish: str | None) -> fourfold.GenerationUsage:
    """The server's own token counts when it sent them (``usage``), else words; it hit
    the limit when its ``finish_reason`` says ``length``."""
    at_limit = finish == "length"
    if isinstance(reported, dict):
        read, made = reported.get("prompt_tokens"), reported.get("completion_tokens")
        if isinstance(read, int) and isinstance(made, int) and not isinstance(read, bool):
            return fourfold.GenerationUsage(read, made, at_limit)
    read = sum(len(m.content.split()) for m in prompt.messages)
    return fourfold.GenerationUsage(read, len(text.split()), at_limit, unit="words")


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The ``data:`` payloads of a server-sent event stream (multi-line data joined)."""
    buffer: list[str] = []
    for line in lines:
        if not line:
            if buffer:
                yield "\n".join(buffer)
                buffer = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            buffer.append(value[1:] if value.startswith(" ") else value)
    if buffer:
        yield "\n".join(buffer)
