"""fourfold's version, read once from the installed distribution.

It lives in its own module at the bottom of the layers so that any module (an index
signature, an artifact's metadata) can record it without importing the package
``fourfold`` — the public API, which sits above everything it re-exports.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as _version

__all__ = ["__version__"]

try:
    __version__ = _version("fourfold")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"
