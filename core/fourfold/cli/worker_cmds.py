"""``fourfold worker, beat, refresh, tasks``."""
