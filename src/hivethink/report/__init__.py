"""Reports of a lab run: an HTML page with plots and tables, a Markdown summary, a terminal view."""

from hivethink.report.build import build_report
from hivethink.report.terminal import find_record, neutralise, show_sample

__all__ = ["build_report", "find_record", "neutralise", "show_sample"]
