"""Reports across runs (`python -m ladlit.report`): `aggregate` turns the runs' records into
comparable rows (seeds counted, paired differences, example sets checked); `render` writes them
as markdown, CSV and plots."""

from ladlit.reporting.aggregate import Row, Run, find_runs, summarize
from ladlit.reporting.render import plot, write_report

__all__ = ["Row", "Run", "find_runs", "plot", "summarize", "write_report"]
