"""Evaluation metrics and every report file of a run (reports, bad cases, plots, model card)."""
from textsift.reporting.metrics import (classification_report, confusion, format_report,
                                        multi_label_metrics, single_label_metrics, tune_thresholds)
from textsift.reporting.model_card import environment, fingerprint, git_commit, write_model_card
from textsift.reporting.plots import plot_confusion, plot_training_curves
from textsift.reporting.reports import write_split_reports

__all__ = ["classification_report", "confusion", "environment", "fingerprint", "format_report",
           "git_commit", "multi_label_metrics", "plot_confusion", "plot_training_curves",
           "single_label_metrics", "tune_thresholds", "write_model_card", "write_split_reports"]
