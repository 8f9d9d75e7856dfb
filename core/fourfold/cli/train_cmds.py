"""``fourfold train, fine-tune, artifacts``."""
