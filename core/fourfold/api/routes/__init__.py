"""One router per file; ``fourfold.api.main`` includes them all."""
