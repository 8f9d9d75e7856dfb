"""Helpers several test packages share (models that are slow to prepare)."""
