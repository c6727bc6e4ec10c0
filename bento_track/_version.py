"""The package version, in a module of its own so that any module may import it
without importing the package's public surface first."""

__version__ = "0.1.0"
"""This bento_track's version, as installed (PEP 440)."""
