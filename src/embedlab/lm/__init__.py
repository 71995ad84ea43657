"""LSTM language model (Zaremba, Sutskever & Vinyals, arXiv:1409.2329, 2014) on token corpora."""
