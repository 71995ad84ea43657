"""Command-line interface: ``embedlab kge|datasets ...``."""
