"""ncfd's version, in a module of its own: what every layer may read without importing the API."""

__version__ = "0.2.0"
