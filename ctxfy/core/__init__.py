"""The pure core: value objects, rules and ports.

Imports only the standard library and attrs, does no I/O and reads no clock; an
import-linter contract in CI keeps it that way.
"""
