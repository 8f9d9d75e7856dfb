"""The file helpers the index lifecycle relies on to survive a crash at any moment.

They are :mod:`fourfold.files`'s, shared with the rest of fourfold (reports, the
advisor, the evaluation, the worker); they are re-exported here for the modules and
plugins that import them from this older place."""

from __future__ import annotations

from fourfold.files import append_line, copy_tree, describe_os_error, fsync_dir, remove_tree, write_atomic, write_json_atomic

__all__ = ["write_atomic", "write_json_atomic", "append_line", "copy_tree", "remove_tree", "fsync_dir", "describe_os_error"]
