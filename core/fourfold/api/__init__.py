"""fourfold's HTTP API: OpenAI-compatible chat completions, domain operations and a chat page.

``create_app(manifests)`` builds the FastAPI application; ``fourfold serve`` and
``fourfold up`` run it with uvicorn. See ``docs/api.md``.
"""

from fourfold.api.main import ApiOptions, create_app

__all__ = ["ApiOptions", "create_app"]
