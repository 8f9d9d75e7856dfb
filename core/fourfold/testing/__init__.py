"""Test kit for fourfold plugin authors.

**Contract tests.** Subclass your component kind's contract in a test module and point it
at your class; pytest then runs every check of that kind's interface against it::

    import fourfold_keyword
    from fourfold.testing import RetrieverContract

    class TestKeywordRetriever(RetrieverContract):
        component_class = fourfold_keyword.KeywordRetriever
        config = {"top_k": 3}
        plugin = fourfold_keyword

A failing check says what to fix, e.g. ``search() returned 7 passages with top_k=3:
return at most top_k``. Contracts: :class:`RetrieverContract`,
:class:`PromptStrategyContract`, :class:`GeneratorContract`, :class:`EmbedderContract`,
:class:`LoaderContract`, :class:`TrainerContract`, :class:`FineTunerContract`,
:class:`SourceContract`. Their
fixtures (``component_config``, ``component_context``, ``embedder``, ``sample_file``, …)
can be overridden in the subclass.

**Fixtures.** Installing fourfold registers a pytest plugin (``pytest11`` entry point
``fourfold``) that only adds fixtures — nothing happens unless a test asks for one:
``fourfold_host`` (a fresh plugin host), ``register_plugin`` (register a plugin object for
one test), ``make_fourfold_domain`` / ``fourfold_domain`` (a temporary domain over sample
knowledge). ``-p no:fourfold`` turns them off.

**Helpers.** :class:`HashingEmbedder` (instant deterministic vectors),
:data:`SAMPLE_DOCUMENTS` / :func:`sample_chunks` / :func:`sample_passages`,
:func:`write_sample` (md, txt, html, pdf files), :func:`tiny_causal_lm`.
"""

from fourfold.testing.base import ComponentContract, ContractFailure, make_context
from fourfold.testing.corpus import SAMPLE_DOCUMENTS, SAMPLE_QUESTION, HashingEmbedder, sample_chunks, sample_passages
from fourfold.testing.embedding import EmbedderContract, LoaderContract
from fourfold.testing.fixtures import write_sample_knowledge
from fourfold.testing.models import make_tiny_causal_lm, tiny_causal_lm
from fourfold.testing.prompting import GeneratorContract, PromptStrategyContract
from fourfold.testing.retriever import RetrieverContract, build_version
from fourfold.testing.source import SourceContract
from fourfold.testing.samples import SAMPLE_FORMATS, SAMPLE_SENTENCE, write_broken_sample, write_sample
from fourfold.testing.training import FineTunerContract, RecordingProgress, TrainerContract

CONTRACTS = {
    "retriever": RetrieverContract,
    "prompt_strategy": PromptStrategyContract,
    "generator": GeneratorContract,
    "embedder": EmbedderContract,
    "loader": LoaderContract,
    "trainer": TrainerContract,
    "fine_tuner": FineTunerContract,
    "source": SourceContract,
}
"""The contract class of each component kind."""

__all__ = [
    "CONTRACTS",
    "ComponentContract",
    "ContractFailure",
    "EmbedderContract",
    "FineTunerContract",
    "GeneratorContract",
    "HashingEmbedder",
    "LoaderContract",
    "PromptStrategyContract",
    "RecordingProgress",
    "RetrieverContract",
    "SAMPLE_DOCUMENTS",
    "SAMPLE_FORMATS",
    "SAMPLE_QUESTION",
    "SAMPLE_SENTENCE",
    "SourceContract",
    "TrainerContract",
    "build_version",
    "make_context",
    "make_tiny_causal_lm",
    "sample_chunks",
    "sample_passages",
    "tiny_causal_lm",
    "write_broken_sample",
    "write_sample",
    "write_sample_knowledge",
]
