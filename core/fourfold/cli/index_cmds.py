"""``fourfold index build/status/rollback, search, ask, eval``."""
