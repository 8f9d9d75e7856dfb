"""``fourfold new-plugin``."""
