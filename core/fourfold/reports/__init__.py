"""Self-contained HTML reports (tables and inline SVG plots) for ``fourfold advise`` and
``fourfold eval compare``, kept in the state dir and served by the API under ``/reports/``."""

from fourfold.reports.html import render_advice, render_comparison
from fourfold.reports.store import ReportInfo, list_reports, read_report, report_path, reports_dir, save_report

__all__ = ["ReportInfo", "list_reports", "render_advice", "read_report", "render_comparison", "report_path", "reports_dir", "save_report"]
