"""Adapters: everything that talks to the world (FastMCP, HTTP, files, LLMs, stores)."""
