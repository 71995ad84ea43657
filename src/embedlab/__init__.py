"""embedlab: learning, regularizing and compressing embedding tables.

Task families: knowledge-graph link prediction (:mod:`embedlab.kge`), with recommenders and
language models to follow. See the README for the command-line interface.
"""

__version__ = "0.1.0"
