"""The package version, in one place (read by ``jaxgd.__version__`` and saved results)."""

__version__ = "0.1.0"
