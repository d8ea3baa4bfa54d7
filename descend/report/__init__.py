"""Plots, run folders and the self-contained HTML report of a run or a comparison.

This layer takes plain data (lists of dicts, dicts, strings) and writes files; it
imports nothing from the rest of descend, so any code that can produce a history
dict can use it.
"""

from descend.report._files import append_text_durable, write_bytes_atomic, write_text_atomic
from descend.report.metrics_table import append_metrics_csv, write_metrics_csv
from descend.report.plots import loss_figure, lr_figure, png_bytes, validation_figure
from descend.report.run_folder import write_run, write_single_run
from descend.report.summary import summarize_runs
from descend.report.tensorboard_events import tensorboard_available, write_tensorboard
from descend.report.tune_folder import write_tune_run
from descend.report.tune_plots import sensitivity_figure

__all__ = [
    "append_metrics_csv",
    "append_text_durable",
    "loss_figure",
    "lr_figure",
    "png_bytes",
    "sensitivity_figure",
    "summarize_runs",
    "tensorboard_available",
    "validation_figure",
    "write_bytes_atomic",
    "write_metrics_csv",
    "write_run",
    "write_single_run",
    "write_tensorboard",
    "write_text_atomic",
    "write_tune_run",
]
