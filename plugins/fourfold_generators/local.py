"""``transformers``: any local causal language model, including ones fourfold trained.

Models load once per process, lazily, and are shared by every domain that names the
same folder. One generation runs at a time per model: on a CPU, parallel generations
only slow each other down, and a lock keeps the model's caches consistent.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import Field

import fourfold

__all__ = ["LocalModel", "TransformersGenerator", "TransformersConfig", "load_local_model", "GenerationOptions"]

log = logging.getLogger("fourfold.generators")


@dataclass
class LocalModel:
    """A loaded model and tokenizer, and the lock that serialises generation on it."""

    path: Path
    model: Any
    tokenizer: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    load_seconds: float = 0.0

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    @property
    def context_length(self) -> int:
        cfg = self.model.config
        for attr in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length"):
            value = getattr(cfg, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048


_models: dict[Path, LocalModel] = {}
_models_lock = threading.Lock()
_loading: dict[Path, threading.Lock] = {}


def load_local_model(path: Path, *, dtype: str = "float32", threads: int | None = None) -> LocalModel:
    """The model in ``path`` (a folder ``from_pretrained`` reads), loaded once per process."""
    path = Path(path).resolve()
    with _models_lock:
        if path in _models:
            return _models[path]
        lock = _loading.setdefault(path, threading.Lock())
    with lock:  # other folders keep loading in parallel; this one loads once
        if path in _models:
            return _models[path]
        if not (path / "config.json").is_file():
            # Not a FourfoldError: the runtime then names the generator and plugin too.
            raise FileNotFoundError(f"{path} is not a transformers model folder (no config.json)")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # callers show their own progress
        if threads:
            torch.set_num_threads(threads)
        started = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
        model.eval()
        if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
            tokenizer.pad_token = tokenizer.eos_token
        loaded = LocalModel(path=path, model=model, tokenizer=tokenizer, load_seconds=time.perf_counter() - started)
        log.info("loaded %s in %.1fs", path, loaded.load_seconds)
        with _models_lock:
            _models[path] = loaded
        return loaded


class AnswerRepetitionGuard:
    """Repetition penalty and no-repeat n-grams over the *generated* tokens only.

    transformers' own versions also count the prompt, so in a grounded prompt they push
    the model away from the very words of the sources it should quote (and, strong
    enough, into gibberish). Here the sources stay free to copy; only the answer's own
    loops are discouraged.
    """

    def __init__(self, prompt_length: int, penalty: float, ngram: int):
        self.prompt_length = prompt_length
        self.penalty = penalty
        self.ngram = ngram

    def __call__(self, input_ids, scores):
        import torch

        generated = input_ids[:, self.prompt_length :]
        if generated.shape[1] == 0:
            return scores
        if self.penalty != 1:
            picked = torch.gather(scores, 1, generated)
            picked = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
            scores = scores.scatter(1, generated, picked)
        n = self.ngram
        if n and generated.shape[1] >= n:
            for row in range(generated.shape[0]):
                tokens = generated[row].tolist()
                prefix = tuple(tokens[-(n - 1) :]) if n > 1 else ()
                banned = {
                    tokens[i + n - 1]
                    for i in range(len(tokens) - n + 1)
                    if tuple(tokens[i : i + n - 1]) == prefix
                }
                if banned:
                    scores[row, list(banned)] = -float("inf")
        return scores


def _eos_ids(local: LocalModel) -> set[int]:
    ids = local.model.generation_config.eos_token_id if local.model.generation_config is not None else None
    if ids is None:
        ids = local.tokenizer.eos_token_id
    if ids is None:
        return set()
    return {int(i) for i in (ids if isinstance(ids, (list, tuple)) else [ids])}


@functools.cache
def _counting_streamer_class() -> type:
    # Built on first use: this module does not import transformers at import time.
    from transformers import TextIteratorStreamer

    class CountingStreamer(TextIteratorStreamer):
        """A text streamer that also counts the new tokens and keeps the last one."""

        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.generated = 0
            self.last_token: int | None = None
            self._prompt_seen = False

        def put(self, value):
            if not self._prompt_seen:
                self._prompt_seen = True  # generate() hands the prompt first
            else:
                flat = value.reshape(-1).tolist()
                self.generated += len(flat)
                if flat:
                    self.last_token = int(flat[-1])
            super().put(value)

    return CountingStreamer


class TransformersConfig(fourfold.ComponentConfig):
    model: str = Field(
        description="Model folder (relative to the manifest) or 'artifact:NAME' for a model fourfold trained or fine-tuned."
    )
    max_tokens: int = Field(256, ge=1, le=8192, description="Most new tokens per answer (requests may ask for fewer).")
    timeout_s: float = Field(60.0, gt=0, le=3600, description="Longest time one answer may take.")
    temperature: float = Field(0.0, ge=0, le=2, description="0: greedy decoding (reproducible, most grounded).")
    top_p: float = Field(0.9, gt=0, le=1, description="Nucleus sampling cut-off (only when temperature > 0).")
    repetition_penalty: float = Field(
        1.1, ge=1, le=2, description="Penalise tokens the answer already used (not the prompt's); small models loop without it."
    )
    no_repeat_ngram_size: int = Field(0, ge=0, le=20, description="Forbid the answer repeating its own n-grams of this size (0: off).")
    prompt_format: Literal["auto", "chat", "plain"] = Field(
        "auto", description="'chat': the tokenizer's chat template; 'plain': 'Question: …\\nAnswer: ' text (as fourfold fine-tunes models without a template); 'auto': chat when the tokenizer has a template."
    )
    answer_from: Literal["passages", "quotes"] = Field(
        "passages",
        description="'passages': the model reads the prompt strategy's passages. 'quotes': it reads only the "
        "sentences the extractive generator would quote (chosen with the domain's embedder, numbered as their "
        "passages) and phrases its answer from them; a small model then stays on the documents' words, and "
        "when no sentence answers, the no-answer text is given without running the model.",
    )
    dtype: Literal["float32", "bfloat16"] = Field("float32", description="Weights' precision in memory.")
    seed: int = Field(0, description="Random seed for sampling (temperature > 0).")


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int
    timeout_s: float


class TransformersGenerator(fourfold.Generator):
    """A local causal LM through transformers: any folder ``from_pretrained`` reads, or
    ``artifact:NAME`` for models fourfold trained or fine-tuned. Uses the tokenizer's chat
    template when it has one, else a plain "Question: … Answer:" format."""

    name = "transformers"
    description = "A local causal language model (folder or artifact:NAME) through transformers."
    Config = TransformersConfig

    def __init__(self, config=None, context=None):
        super().__init__(config, context)
        self._model: LocalModel | None = None
        self._lock = threading.Lock()
        self._quoter = None  # the extractive generator choosing the quotes (answer_from: quotes)

    # -- model -------------------------------------------------------------------------

    def model_path(self) -> Path:
        """The folder to load (resolving ``artifact:NAME`` and manifest-relative paths)."""
        ref = self.config.model
        if self.context is None:
            return Path(ref).expanduser().resolve()
        return Path(self.context.resolve_model(ref))

    def loaded(self) -> LocalModel:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    threads = self.context.settings.torch_threads if self.context else None
                    self._model = load_local_model(self.model_path(), dtype=self.config.dtype, threads=threads)
        return self._model

    def prepare(self, progress) -> None:
        progress.start(f"loading {self.name} model", None)
        self.loaded()
        progress.advance(1)

    def cost_profile(self) -> fourfold.GenerationWork:
        try:
            folder: Path | None = self.model_path()
        except fourfold.ArtifactNotFound:  # made by a stage of the manifest, not yet run
            folder = None
        return fourfold.GenerationWork(
            model_ref=self.config.model, model_folder=folder if folder and (folder / "config.json").is_file() else None,
            max_tokens=self.config.max_tokens, chat=self.config.prompt_format != "plain",
        )

    @classmethod
    def calibration_configs(cls, model: str | None, *, quick: bool = False) -> list[dict]:
        if model is None:
            return []
        return [{"model": model, "max_tokens": 24, "repetition_penalty": 1.0, "prompt_format": "plain"}]

    # -- prompt ------------------------------------------------------------------------

    def render(self, prompt: fourfold.Prompt, local: LocalModel) -> str:
        """The prompt as the text the model reads."""
        fmt = self.config.prompt_format
        use_chat = fmt == "chat" or (fmt == "auto" and local.has_chat_template)
        messages = [{"role": m.role, "content": m.content} for m in prompt.messages]
        if use_chat:
            if not local.has_chat_template:
                raise ValueError(f"prompt_format is 'chat' but the tokenizer in {local.path} has no chat template")
            return local.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # The format fourfold's fine-tuners train models without a chat template on.
        text = ""
        for m in messages:
            content = m["content"].strip()
            if m["role"] == "user":
                text += f"Question: {content}\n"
            elif m["role"] == "assistant":
                text += f"Answer: {content}\n\n"
            else:
                text += f"{content}\n\n"
        return text + "Answer: "

    def _inputs(self, prompt: fourfold.Prompt, local: LocalModel, max_new_tokens: int) -> dict[str, Any]:
        text = self.render(prompt, local)
        # Templates already hold their special tokens; plain prompts are trained without.
        encoded = local.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        room = max(16, local.context_length - max_new_tokens)
        ids = encoded["input_ids"]
        if ids.shape[1] > room:
            # Keep the end: the question and the generation cue matter most.
            encoded = {k: v[:, -room:] for k, v in encoded.items()}
        return dict(encoded)

    def options(self, limits: fourfold.GenerationLimits) -> GenerationOptions:
        return GenerationOptions(
            max_new_tokens=max(1, min(limits.max_tokens, self.config.max_tokens)),
            timeout_s=min(limits.timeout_s, self.config.timeout_s),
        )

    def _generate_kwargs(self, local: LocalModel, opts: GenerationOptions, prompt_length: int) -> dict[str, Any]:
        cfg = self.config
        kwargs: dict[str, Any] = {
            "max_new_tokens": opts.max_new_tokens,
            "max_time": opts.timeout_s,
            "pad_token_id": local.tokenizer.pad_token_id,
        }
        if cfg.repetition_penalty != 1 or cfg.no_repeat_ngram_size:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList(
                [AnswerRepetitionGuard(prompt_length, cfg.repetition_penalty, cfg.no_repeat_ngram_size)]
            )
        if cfg.temperature > 0:
            kwargs.update(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs

    # -- generation ----------------------------------------------------------------------

    def generate(self, prompt, limits):
        text, usage = "", None
        for piece in self.stream(prompt, limits):
            text += piece
            usage = getattr(piece, "usage", None) or usage
        return fourfold.GeneratedText(text, usage)

    def from_quotes(self, prompt: fourfold.Prompt) -> fourfold.Prompt | str:
        """``prompt`` rewritten to hold only the sentences worth quoting (``answer_from:
        quotes``), or the no-answer text when none is."""
        from fourfold_generators.extractive import Extractive

        if self._quoter is None:
            self._quoter = Extractive(None, self.context)
        no_answer = prompt.metadata.get("no_answer") or "The documents of this assistant do not answer this question."
        if not prompt.passages:
            return no_answer
        # Best first, as extractive would quote them: a small model leans on the first.
        chosen = list(self._quoter.select(prompt))
        if not chosen:
            return no_answer
        quotes = "\n".join(f"[{c.n}] {c.text}" for c in chosen)
        metadata = {**prompt.metadata, "quotes": [(c.n, c.text) for c in chosen]}
        messages = [
            fourfold.Message(
                "system",
                "Answer the question in one or two short sentences using only the numbered quotes. Reuse their words. "
                "End each sentence with the number of the quote it comes from, like [1]. Keep every 'not', 'never' and "
                f'number exactly as the quote has it. If the quotes do not answer the question, reply exactly: "{no_answer}"',
            ),
            fourfold.Message("user", f"Quotes:\n{quotes}\n\nQuestion: {prompt.question}"),
        ]
        return dataclasses.replace(prompt, messages=messages, metadata=metadata)

    def stream(self, prompt: fourfold.Prompt, limits: fourfold.GenerationLimits) -> Iterator[str]:
        if self.config.answer_from == "quotes":
            rewritten = self.from_quotes(prompt)
            if isinstance(rewritten, str):
                yield rewritten
                yield fourfold.GeneratedText("", fourfold.GenerationUsage(0, 0, False))
                return
            keeper = QuoteKeeper(rewritten.metadata["quotes"], rewritten.metadata.get("no_answer") or "")
            for piece in self._stream_model(rewritten, limits):
                if isinstance(piece, fourfold.GeneratedText) and not piece:
                    rest = keeper.close()
                    if rest:
                        yield rest
                    yield piece
                    continue
                shown = keeper.feed(piece)
                if shown:
                    yield shown
                if keeper.done:
                    rest = keeper.close()
                    if rest:
                        yield rest
                    return  # the quotes stand in for the rest: the model is stopped
            return
        yield from self._stream_model(prompt, limits)

    def _stream_model(self, prompt: fourfold.Prompt, limits: fourfold.GenerationLimits) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        local = self.loaded()
        opts = self.options(limits)
        inputs = self._inputs(prompt, local, opts.max_new_tokens)
        cancelled = threading.Event()

        class _Cancel(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return cancelled.is_set()

        # No read timeout: generate() itself stops at max_time, and a request waiting
        # for the model lock behind others should wait, not fail.
        streamer = _counting_streamer_class()(local.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = self._generate_kwargs(local, opts, int(inputs["input_ids"].shape[1]))
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with local.lock, torch.inference_mode():
                    if self.config.temperature > 0:
                        torch.manual_seed(self.config.seed)
                    local.model.generate(
                        **inputs, streamer=streamer, stopping_criteria=StoppingCriteriaList([_Cancel()]), **kwargs
                    )
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, name=f"generate-{self.name}", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
            worker.join(timeout=opts.timeout_s + 30)
            if not failure:
                # The model's own counts: the prompt as fed (after any cut) and the new
                # tokens; it hit the limit when it produced max_new_tokens without ending.
                ended = streamer.last_token is not None and streamer.last_token in _eos_ids(local)
                at_limit = streamer.generated >= opts.max_new_tokens and not ended
                yield fourfold.GeneratedText(
                    "", fourfold.GenerationUsage(int(inputs["input_ids"].shape[1]), streamer.generated, at_limit)
                )
        finally:
            # The consumer stopped (answer finished, client gone, error): stop the model.
            cancelled.set()
            worker.join(timeout=opts.timeout_s + 30)
        if failure:
            raise failure[0]


_MARKS = re.compile(r"\s*\[[\d,\s]+\]")
_LABEL = re.compile(r"^\s*(?:quotes?|answer)\s*:\s*", re.I)
# Numbers in figures or words ("two to four weeks", "a few weeks"): a sentence that drops
# or changes one no longer states what its quote states.
_DIGITS = re.compile(
    r"\d+(?:[.,/]\d+)*|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
    r"hundred|thousand|few|several|half|once|twice|dozen)\b",
    re.I,
)
_REFUSES = re.compile(r"\b(?:do|does|did) not (?:answer|cover|contain|say|mention|provide)\b|\bi (?:do not|don't|cannot|can't) (?:know|find|answer)\b", re.I)


class QuoteKeeper:
    """A small model's answer held to the quotes it read (``answer_from: quotes``).

    Fed the model's text as it comes, it passes on each finished sentence that states
    what one quote states: at least ``min_share`` of its content words in that quote,
    no number the quote lacks, and every number of the quote kept. Any other sentence is
    replaced by the quote closest to it (each quote at most once); the quotes it used
    in neither way follow what it said, best first. When the model says
    the quotes do not answer before saying anything else, the quotes themselves are the
    answer: they were chosen because they answer (:attr:`done` then tells the caller to
    stop the model). What it passes on is checked against the passages like any answer.
    """

    def __init__(self, quotes: list[tuple[int, str]], no_answer: str = "", *, min_share: float = 0.75):
        self.quotes = [(n, text, fourfold.content_words(_MARKS.sub("", text)), {d.lower() for d in _DIGITS.findall(text)}) for n, text in quotes]
        self.no_answer = " ".join(no_answer.lower().split())
        self.min_share = min_share
        self.used: set[int] = set()  # indexes of quotes shown
        self.done = False
        self._buffer = ""
        self._said = False

    def feed(self, piece: str) -> str:
        if self.done:
            return ""
        self._buffer += piece
        out = []
        spans = fourfold.sentence_spans(self._buffer, final=False)  # finished sentences only
        consumed = 0
        for start, end in spans:
            if self.done:
                break
            out.append(self._sentence(self._buffer[start:end]))
            consumed = end
        self._buffer = self._buffer[consumed:]
        return "".join(out)

    def close(self) -> str:
        rest, self._buffer = self._buffer, ""
        shown = "" if self.done or not rest.strip() else self._sentence(rest)
        if not self.done:
            # The quotes were chosen because they answer: those the model neither phrased
            # nor stood in for follow what it said, best first.
            rest = self._all_quotes().rstrip()
            if rest:
                shown = (shown.rstrip() + " " if shown.strip() else "") + rest
        self.done = True
        return shown

    @staticmethod
    def _cite(text: str, n: int) -> str:
        body = text.rstrip()
        end = len(body.rstrip(".!?…\"'”’)"))
        return f"{body[:end]} [{n}]{body[end:]}"

    def _all_quotes(self) -> str:
        """The quotes not shown yet, best first."""
        shown = [self._cite(text, n) for i, (n, text, _, _) in enumerate(self.quotes) if i not in self.used]
        self.used.update(range(len(self.quotes)))
        return " ".join(shown) + " " if shown else ""

    def _sentence(self, raw: str) -> str:
        raw = _LABEL.sub("", raw)  # "Quotes:", "Answer:" echoed from the prompt
        if not self._said:
            raw = raw.lstrip()
        plain = _MARKS.sub("", raw).strip()
        if not re.search(r"\w", plain):
            return ""  # a citation mark or punctuation left alone
        normal = " ".join(plain.lower().split())
        if _REFUSES.search(plain) or (self.no_answer and self.no_answer[:40] in normal):
            if not self._said:
                self.done = True
                return self._all_quotes()
            return ""  # a refusal after an answer adds nothing
        self._said = True
        words = fourfold.content_words(plain)
        if not words:
            # "Yes." and the like: the answer's checks decide; a stray "10." says nothing
            return raw if re.match(r"^(?:yes|no)\b", plain, re.I) else ""
        best, share = max(
            ((i, len(words & qw) / len(words)) for i, (_, _, qw, _) in enumerate(self.quotes)), key=lambda item: item[1]
        )
        n, text, _, digits = self.quotes[best]
        said_digits = {d.lower() for d in _DIGITS.findall(plain)}
        if share >= self.min_share and said_digits <= digits and digits <= said_digits:
            self.used.add(best)
            return raw if _MARKS.search(raw) else self._cite(plain, n) + " "
        if best in self.used:
            return ""
        self.used.add(best)
        return self._cite(text, n) + " "
