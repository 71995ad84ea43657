"""Config plumbing shared by every task family.

``config.base``: :class:`StrictModel`, the strict pydantic base of every config section.
``config.io``: YAML files, dotted ``--set key=value`` overrides, validation errors that name the
key, and the resolved-config dump. Each family keeps its schema beside its code
(``embeddings/config.py`` for tables, ``kge/config.py``, ``recsys/config.py``, ``lm/config.py``);
loop and run-level keys shared by every task are in ``training/config.py``.
"""
