"""Evaluation: filtered ranking for KGE (reciprocal queries, known-answer filter, ranks).

Below the task packages: it imports none of them (tests/test_layering.py).
"""
