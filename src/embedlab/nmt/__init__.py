"""Transformer NMT (SSE paper section 5.2): data, model, decoding, BLEU, the task."""
