"""hs-gateway: field devices served as Project Haystack points (the Haystack side)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hs-gateway")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
