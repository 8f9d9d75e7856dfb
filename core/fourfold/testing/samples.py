"""Sample files in the formats fourfold's loaders read, written on the fly, each holding
:data:`SAMPLE_SENTENCE` under the heading :data:`SAMPLE_HEADING`."""

from __future__ import annotations

from pathlib import Path

__all__ = ["SAMPLE_SENTENCE", "SAMPLE_HEADING", "SAMPLE_FORMATS", "write_sample", "write_broken_sample"]

SAMPLE_HEADING = "Feeding cats"
SAMPLE_SENTENCE = "Adult cats should be fed twice a day."
_SECOND = "Kittens need four small meals of wet food."


def _pdf(lines: list[str]) -> bytes:
    """A one-page PDF showing ``lines`` in Helvetica, with a correct cross-reference table."""
    text_ops = "BT /F1 12 Tf 72 720 Td 16 TL " + " ".join(
        "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj T*" for line in lines
    ) + " ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text_ops), text_ops.encode("latin-1")),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _html() -> str:
    return (
        "<!doctype html><html><head><title>Caring for cats</title></head><body>"
        f"<h1>Caring for cats</h1><h2>{SAMPLE_HEADING}</h2><p>{SAMPLE_SENTENCE}</p><p>{_SECOND}</p></body></html>\n"
    )


def _markdown() -> str:
    return f"# Caring for cats\n\n## {SAMPLE_HEADING}\n\n{SAMPLE_SENTENCE} {_SECOND}\n"


_WRITERS = {
    "md": _markdown,
    "markdown": _markdown,
    "txt": lambda: f"Caring for cats\n\n{SAMPLE_HEADING}\n\n{SAMPLE_SENTENCE} {_SECOND}\n",
    "html": _html,
    "htm": _html,
    "pdf": lambda: _pdf(["Caring for cats", SAMPLE_HEADING, SAMPLE_SENTENCE, _SECOND]),
}

SAMPLE_FORMATS = tuple(_WRITERS)
"""Extensions :func:`write_sample` can write."""


def write_sample(extension: str, folder: Path, stem: str = "cats") -> Path:
    """Write a sample ``.extension`` file into ``folder`` and return its path.

    :raises KeyError: for an extension not in :data:`SAMPLE_FORMATS`.
    """
    ext = extension.lower().lstrip(".")
    content = _WRITERS[ext]()
    path = Path(folder) / f"{stem}.{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def write_broken_sample(extension: str, folder: Path) -> Path | None:
    """A file of ``extension`` a loader cannot read, or None where every byte string is
    a valid file of that format (plain text)."""
    ext = extension.lower().lstrip(".")
    if ext == "pdf":
        path = Path(folder) / "broken.pdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R\nthis file was cut off")
        return path
    return None
