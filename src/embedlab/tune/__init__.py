"""Hyper-parameter search over any config key with Optuna (``embedlab tune``)."""
