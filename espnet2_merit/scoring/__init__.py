"""Scoring: the metric registry, set scoring, RESULTS.md, comparisons with paired
significance tests, plots, and the whole-dev-set statistics of model selection."""
