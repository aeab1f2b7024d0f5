"""The single source of ctxfy's version."""

__version__ = "0.1.0"
