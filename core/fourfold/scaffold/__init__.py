"""``fourfold new-plugin``: write a separate, installable plugin distribution with one
working component, its tests (on fourfold's contract classes) and a README.

Templates are package data (``templates/``) filled with :class:`string.Template`, so
``$name``-style placeholders are the only syntax to know.
"""

from __future__ import annotations

import difflib
import keyword
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from fourfold.components import KINDS, NAME_PATTERN
from fourfold.errors import FourfoldError

__all__ = ["PluginSpec", "KIND_OPTIONS", "plugin_spec", "create_plugin"]

KIND_OPTIONS: dict[str, str] = {kind.replace("_", "-"): kind for kind in KINDS}
"""``--kind`` values (kebab-case) → component kinds."""

_CLASS_SUFFIX = {
    "retriever": "Retriever",
    "prompt_strategy": "Strategy",
    "generator": "Generator",
    "embedder": "Embedder",
    "loader": "Loader",
    "trainer": "Trainer",
    "fine_tuner": "FineTuner",
    "source": "Source",
}
_CONTRACT = {
    "retriever": "RetrieverContract",
    "prompt_strategy": "PromptStrategyContract",
    "generator": "GeneratorContract",
    "embedder": "EmbedderContract",
    "loader": "LoaderContract",
    "trainer": "TrainerContract",
    "fine_tuner": "FineTunerContract",
    "source": "SourceContract",
}
_MANIFEST_BLOCK = {
    "retriever": "retrieval",
    "prompt_strategy": "prompt",
    "generator": "generation",
    "embedder": "embedding",
    "trainer": "training",
    "fine_tuner": "fine_tuning",
}
_EXAMPLE_WITH = {
    "retriever": "{top_k: 5}",
    "prompt_strategy": "{max_passage_chars: 800}",
    "generator": "{sentences: 2}",
    "embedder": "{dimension: 256}",
    "trainer": "{steps: 500, width: 128, layers: 2}",
    "fine_tuner": "{base: artifact:my-model, data: finetune.jsonl, steps: 100}",
}


@dataclass(frozen=True)
class PluginSpec:
    """Everything the templates need, derived from a plugin name and kind."""

    name: str
    kind: str

    @property
    def dist(self) -> str:
        return f"fourfold-{self.name}"

    @property
    def package(self) -> str:
        return "fourfold_" + self.name.replace("-", "_")

    @property
    def class_name(self) -> str:
        camel = "".join(part.capitalize() for part in self.name.split("-"))
        suffix = _CLASS_SUFFIX[self.kind]
        return camel if camel.endswith(suffix) else camel + suffix

    @property
    def extension(self) -> str:
        return self.name.replace("-", "")

    def values(self) -> dict[str, str]:
        from fourfold import __version__
        from fourfold.components import KIND_HOOKS
        from fourfold.plugins import PLUGIN_API_VERSION

        kind_title = self.kind.replace("_", " ")
        release = ".".join(__version__.split(".")[:2]) if __version__[:1].isdigit() else "0.1"
        return {
            "name": self.name,
            "dist": self.dist,
            "package": self.package,
            "class_name": self.class_name,
            "kind": self.kind,
            "kind_option": self.kind.replace("_", "-"),
            "kind_title": kind_title,
            "module": self.kind,
            "hook": KIND_HOOKS[self.kind],
            "contract": _CONTRACT[self.kind],
            "api_version": PLUGIN_API_VERSION,
            "fourfold_requirement": f"fourfold>={release}",
            "extension": self.extension,
            "description": f"A fourfold {kind_title}: {self.name}.",
            "usage": self._usage(),
        }

    def _usage(self) -> str:
        if self.kind == "loader":
            return (
                f"fourfold reads every `.{self.extension}` file of a knowledge source with it; include them in the\n"
                f"manifest's sources:\n\n```yaml\nknowledge:\n  sources:\n"
                f"    - path: knowledge/\n      include: [\"**/*.{self.extension}\", \"**/*.md\"]\n```"
            )
        if self.kind == "source":
            return (
                "Point a domain's knowledge at it:\n\n```yaml\nknowledge:\n  sources:\n"
                f"    - {{use: {self.name}, with: {{archive: docs.zip}}}}\n```\n\n"
                "then check the manifest with `fourfold validate domain.yaml`."
            )
        block = _MANIFEST_BLOCK[self.kind]
        return (
            f"Select it in a domain manifest:\n\n```yaml\n{block}: {{use: {self.name}, with: {_EXAMPLE_WITH[self.kind]}}}\n```\n\n"
            "then check the manifest with `fourfold validate domain.yaml`."
        )


def plugin_spec(name: str, kind: str) -> PluginSpec:
    """Validate a plugin ``name`` (kebab-case) and ``kind`` (``retriever``,
    ``prompt-strategy``, …).

    :raises FourfoldError: saying what is wrong and what would be right.
    """
    kind_key = kind.strip().lower().replace("_", "-")
    if kind_key not in KIND_OPTIONS:
        close = difflib.get_close_matches(kind_key, KIND_OPTIONS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise FourfoldError(f"unknown kind '{kind}'{hint}; choose one of: {', '.join(KIND_OPTIONS)}")
    if name.startswith("fourfold-"):
        raise FourfoldError(
            f"give the plugin's own name without the prefix: '{name.removeprefix('fourfold-')}' "
            f"(the distribution is then called '{name}')"
        )
    if not NAME_PATTERN.match(name):
        suggestion = "-".join(p for p in "".join(c if c.isalnum() else "-" for c in name.lower()).split("-") if p)
        hint = f"; try '{suggestion}'" if suggestion and NAME_PATTERN.match(suggestion) else ""
        raise FourfoldError(
            f"plugin name '{name}' is not kebab-case: use lower-case letters, digits and single dashes, "
            f"starting with a letter, e.g. 'keyword-search'{hint}"
        )
    if keyword.iskeyword(name):
        raise FourfoldError(f"plugin name '{name}' is a Python keyword; choose another")
    return PluginSpec(name=name, kind=KIND_OPTIONS[kind_key])


def _template(path: str) -> Template:
    return Template(resources.files("fourfold.scaffold").joinpath("templates", path).read_text(encoding="utf-8"))


def create_plugin(name: str, kind: str, directory: Path) -> list[Path]:
    """Write the distribution ``fourfold-<name>`` into ``directory/fourfold-<name>``.

    :returns: the files written, the project folder first.
    :raises FourfoldError: for an invalid name or kind, a name a registered component of
        that kind already has, or a non-empty target folder.
    """
    spec = plugin_spec(name, kind)
    from fourfold.plugins import get_host

    existing = get_host().get(spec.kind, spec.name)
    if existing is not None:
        label = spec.kind.replace("_", " ")
        raise FourfoldError(
            f"{'an' if label[0] in 'aeiou' else 'a'} {label} named '{spec.name}' is already registered by plugin '{existing.plugin}'; "
            "component names must be unique, choose another name"
        )
    root = Path(directory) / spec.dist
    if root.exists() and any(root.iterdir()):
        raise FourfoldError(f"{root} already exists and is not empty; choose another --dir or remove it")
    values = spec.values()
    files = {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "README.md.tmpl",
        ".gitignore": "gitignore.tmpl",
        f"src/{spec.package}/__init__.py": "__init__.py.tmpl",
        f"src/{spec.package}/{spec.kind}.py": f"components/{spec.kind}.py.tmpl",
        f"tests/test_{spec.kind}.py": f"tests/{spec.kind}.py.tmpl",
    }
    written = [root]
    for relative, template in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_template(template).substitute(values), encoding="utf-8")
        written.append(target)
    return written
