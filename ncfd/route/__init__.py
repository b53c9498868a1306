"""Choosing the route before any tunnel opens: -x, the environment, PAC files, discovery, and the cache."""
