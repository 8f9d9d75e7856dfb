"""Reports kept in the state dir (``<state dir>/reports/``), where the API serves them.

Each report is ``<name>.html`` (the self-contained page) and ``<name>.json`` (its data
plus ``report``: kind, domain, title, created), written atomically. The JSON's domain
decides who may read the report through the API.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fourfold.errors import FourfoldError
from fourfold.files import write_atomic
from fourfold.settings import Settings, get_settings

__all__ = ["ReportInfo", "reports_dir", "save_report", "list_reports", "report_path", "read_report", "REPORT_NAME"]

REPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}\.(html|json)$")


@dataclass
class ReportInfo:
    name: str
    kind: str
    domain: str | None
    title: str
    created: str
    html: str
    json: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reports_dir(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).state_dir / "reports"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "report"


def save_report(html: str, data: dict[str, Any], target: Path | None, *, kind: str, domain: str | None, title: str | None = None,
                settings: Settings | None = None) -> Path:
    """Write ``html`` to ``target`` (when given) and keep it with ``data`` in the
    reports folder. Returns the kept HTML file."""
    now = datetime.now(timezone.utc)
    folder = reports_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{kind}-{_slug(domain or 'all')}-{now.strftime('%Y%m%dT%H%M%S')}"
    n = 1
    while (folder / f"{stem}.html").exists():
        n += 1
        stem = f"{kind}-{_slug(domain or 'all')}-{now.strftime('%Y%m%dT%H%M%S')}-{n}"
    meta = {"kind": kind, "domain": domain, "title": title or f"{kind}: {domain or ''}".strip(": "), "created": now.isoformat(timespec="seconds")}
    write_atomic(folder / f"{stem}.json", json.dumps({**data, "report": meta}, ensure_ascii=False, default=str, indent=1))
    write_atomic(folder / f"{stem}.html", html)
    if target is not None:
        target = Path(target)
        if target.parent and not target.parent.exists():
            raise FourfoldError(f"{target}: folder {target.parent} does not exist")
        write_atomic(target, html)
    return folder / f"{stem}.html"


def list_reports(settings: Settings | None = None) -> list[ReportInfo]:
    """Kept reports, newest first (those whose JSON cannot be read are left out)."""
    folder = reports_dir(settings)
    out = []
    for meta_file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        html = meta_file.with_suffix(".html")
        if report_path(html.name, settings) is None or report_path(meta_file.name, settings) is None:
            continue
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8")).get("report") or {}
        except (OSError, ValueError):
            continue
        out.append(ReportInfo(meta_file.stem, str(meta.get("kind") or ""), meta.get("domain"), str(meta.get("title") or meta_file.stem),
                              str(meta.get("created") or ""), html.name, meta_file.name))
    return sorted(out, key=lambda r: r.created, reverse=True)


def _read_kept(path: Path) -> bytes | None:
    """The bytes of ``path`` when it is a plain file of its own: not a symbolic link
    (opened with ``O_NOFOLLOW``, so a link swapped in after a check is refused too), not
    a hard link (a second name of a file kept elsewhere), not a folder."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:  # missing, or a symbolic link (ELOOP)
        return None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            return None
        return file.read()


def report_path(name: str, settings: Settings | None = None) -> Path | None:
    """The kept file ``name`` (``…html`` or ``…json``), or None when the name is not a
    report's (no paths, no hidden files), the file does not exist, or it is a link
    (symbolic or hard) rather than a file written into the reports folder."""
    if not REPORT_NAME.match(name):
        return None
    folder = reports_dir(settings)
    path = folder / name
    try:
        info = path.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or path.resolve().parent != folder.resolve():
        return None
    return path


def read_report(name: str, settings: Settings | None = None) -> tuple[bytes, dict[str, Any]] | None:
    """The content of the kept file ``name`` and its report record (kind, domain, …,
    read from the report's own ``.json``), or None when either is missing, unreadable
    or a link (see :func:`report_path`)."""
    path = report_path(name, settings)
    if path is None:
        return None
    record = path.with_suffix(".json")
    if report_path(record.name, settings) is None:
        return None
    content, record_bytes = _read_kept(path), _read_kept(record)
    if content is None or record_bytes is None:
        return None
    try:
        meta = json.loads(record_bytes.decode("utf-8")).get("report")
    except (ValueError, AttributeError):
        return None
    return content, meta if isinstance(meta, dict) else {}
