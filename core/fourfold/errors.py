"""The exceptions fourfold raises at people.

Every message names the file, manifest path or plugin involved, what was expected and
what was found, so that it can be printed as-is on one line.
"""

from __future__ import annotations

__all__ = [
    "FourfoldError",
    "ManifestError",
    "PluginError",
    "ComponentError",
    "IndexVersionError",
    "KnowledgeError",
    "DocumentPathError",
    "ConfigError",
    "TrainingError",
    "ArtifactNotFound",
]


class FourfoldError(Exception):
    """Base of every error fourfold raises on purpose."""


class ConfigError(FourfoldError):
    """Settings (environment variables) are invalid."""


class ManifestError(FourfoldError):
    """A domain manifest is invalid.

    ``issues`` holds one line per problem, each starting with ``file:line:``.
    """

    def __init__(self, issues: list[str]):
        self.issues = list(issues)
        super().__init__("\n".join(self.issues))


class PluginError(FourfoldError):
    """A plugin failed to load, register or behave.

    :param plugin: the plugin's name (its entry-point name).
    """

    def __init__(self, message: str, *, plugin: str | None = None):
        self.plugin = plugin
        super().__init__(message)


class ComponentError(PluginError):
    """A component raised or returned something its kind's contract forbids.

    The message always starts with ``<kind> '<name>' (plugin '<plugin>')``.
    """

    def __init__(self, message: str, *, kind: str, name: str, plugin: str | None, domain: str | None = None):
        self.kind = kind
        self.name = name
        self.domain = domain
        prefix = f"{kind} '{name}' (plugin '{plugin}')"
        if domain:
            prefix += f" in domain '{domain}'"
        super().__init__(f"{prefix}: {message}", plugin=plugin)


class KnowledgeError(FourfoldError):
    """A knowledge base could not be built, refreshed or read."""


class DocumentPathError(KnowledgeError, ValueError):
    """A path given for an uploaded document cannot name one (``..``, an absolute path,
    a backslash, a NUL, an empty or dot-name part)."""


class IndexVersionError(KnowledgeError):
    """An index version is missing, locked, or failed validation."""


class TrainingError(FourfoldError):
    """A training or fine-tuning run cannot start or finish: bad or missing data (the
    message names the file and line), an unknown base model, too little text."""


class ArtifactNotFound(FourfoldError):
    """A manifest or command named an artifact that does not exist (the message lists
    the known ones)."""
