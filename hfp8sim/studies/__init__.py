"""Experiments that run the models and write result tables (the reports package plots them)."""
