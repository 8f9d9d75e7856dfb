"""One converted SmolLM2 checkpoint for every test that needs the model.

Converting the GGUF takes tens of seconds, and each test has its own state dir; tests
link ``<state dir>/models/smollm2`` to this shared copy instead. The copy is kept in
the temp dir between runs, keyed by the GGUF file it came from. (Conversion itself is
tested from scratch by the builtin generator contract, which converts into its own state
dir.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["shared_smollm2_models", "link_smollm2"]


def shared_smollm2_models() -> Path:
    """A ``models`` folder holding the converted ``smollm2`` (converted on first use)."""
    from fourfold_generators.smollm2 import find_gguf, smollm2_checkpoint

    gguf = find_gguf()
    stat = gguf.stat()
    models = Path(tempfile.gettempdir()) / f"fourfold-test-models-{os.getuid()}" / f"{stat.st_size}-{int(stat.st_mtime)}"
    smollm2_checkpoint(models)  # a no-op once converted; a file lock guards concurrent runs
    return models


def link_smollm2(state_dir: Path) -> Path:
    """Make ``state_dir/models/smollm2`` the shared converted checkpoint."""
    target = shared_smollm2_models() / "smollm2"
    link = Path(state_dir) / "models" / "smollm2"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(target, target_is_directory=True)
    return link
