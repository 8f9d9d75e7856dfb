"""``fourfold serve and up``."""
