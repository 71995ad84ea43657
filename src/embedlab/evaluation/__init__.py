"""Evaluation: filtered ranking for KGE."""
