"""Hook specifications: the whole contract between fourfold and its plugins.

A plugin is a module (or object) with functions marked ``@fourfold.hookimpl`` whose
names match the specs below. Every builtin component of fourfold is provided through
these same hooks. ``docs/plugin_hooks.md`` documents each hook under a heading that is
its exact signature; a test keeps the two in step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:
    from fourfold.components import (
        Embedder,
        FineTuner,
        Generator,
        Loader,
        PromptStrategy,
        Retriever,
        Source,
        Trainer,
    )
    from fourfold.index.lifecycle import RefreshReport
    from fourfold.answering import AnswerRequest
    from fourfold.types import Answer

hookspec = pluggy.HookspecMarker("fourfold")

# -------------------------------------------------------------------------
# Component registration hooks
#
# Each hands the plugin a ``register`` callback; call it once per component class.
# The host stamps every component with the plugin that registered it and rejects a
# second component of the same kind and name.
# -------------------------------------------------------------------------


@hookspec
def register_trainers(register: Callable[[type[Trainer]], None]) -> None:
    """Register trainers: components that train a model from scratch on domain text.

    :param register: call with each :class:`fourfold.Trainer` subclass.

    .. versionadded:: 1.0
    """


@hookspec
def register_fine_tuners(register: Callable[[type[FineTuner]], None]) -> None:
    """Register fine-tuners: components that adapt an existing model (generator or
    embedder) to domain data.

    :param register: call with each :class:`fourfold.FineTuner` subclass.

    .. versionadded:: 1.0
    """


@hookspec
def register_prompt_strategies(register: Callable[[type[PromptStrategy]], None]) -> None:
    """Register prompt strategies: how a question, retrieved passages and history
    become model input, and how the output is checked.

    :param register: call with each :class:`fourfold.PromptStrategy` subclass.

    .. versionadded:: 1.0
    """


@hookspec
def register_retrievers(register: Callable[[type[Retriever]], None]) -> None:
    """Register retrievers: components that store a domain's chunks in index versions
    and search them.

    :param register: call with each :class:`fourfold.Retriever` subclass.

    .. versionadded:: 1.0
    """


@hookspec
def register_loaders(register: Callable[[type[Loader]], None]) -> None:
    """Register loaders: components that turn one file format into text sections.

    :param register: call with each :class:`fourfold.Loader` subclass; its
        ``extensions`` say which files it reads.

    .. versionadded:: 1.0
    """


@hookspec
def register_embedders(register: Callable[[type[Embedder]], None]) -> None:
    """Register embedders: components that turn text into dense vectors.

    :param register: call with each :class:`fourfold.Embedder` subclass.

    .. versionadded:: 1.0
    """


@hookspec
def register_generators(register: Callable[[type[Generator]], None]) -> None:
    """Register generators: components that produce answer text from a prompt.

    :param register: call with each :class:`fourfold.Generator` subclass.

    .. versionadded:: 1.0
    """


@hookspec
def register_sources(register: Callable[[type[Source]], None]) -> None:
    """Register sources: components that list a domain's documents where they live (a
    folder, a bucket, a website), each with a cheap change marker, and open their bytes.

    :param register: call with each :class:`fourfold.Source` subclass.

    .. versionadded:: 1.3
    """


# -------------------------------------------------------------------------
# Lifecycle hooks for cross-cutting plugins (audit, redaction, guardrails,
# notifications)
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def answer_question(request: AnswerRequest) -> Answer | None:
    """Answer one question for one domain.

    fourfold's own implementation retrieves, prompts, generates and checks citations.
    Plugins wrap it with ``@hookimpl(wrapper=True)`` to inspect or change the request
    before (``request.question``, ``request.history``) and the :class:`fourfold.Answer`
    after (``answer = yield``; return it, changed or not). A wrapper that raises turns
    into an error for that domain's answer only.

    Stops at the first non-None result.

    :param request: the domain, question and history being answered.
    :returns: the answer.

    .. versionadded:: 1.0
    """


@hookspec
def index_published(domain: str, version: str, report: RefreshReport) -> None:
    """Called after a new index version of ``domain`` was published.

    Runs in the process that published (the worker or the CLI). Exceptions are logged
    and never undo the publish.

    :param domain: the domain's name.
    :param version: the version now serving, e.g. ``"v000004"``.
    :param report: what the refresh did (documents added/changed/removed, chunks
        embedded/reused, warnings, timings).

    .. versionadded:: 1.0
    """


@hookspec
def index_refresh_failed(domain: str, error: str) -> None:
    """Called when a refresh of ``domain`` failed; the published version is unchanged.

    :param domain: the domain's name.
    :param error: one line saying what failed.

    .. versionadded:: 1.0
    """
