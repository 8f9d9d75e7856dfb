"""File loaders: Markdown, plain text, HTML and PDF."""

FOURFOLD_PLUGIN_API = "1.0"
