"""A Kubernetes API server double over real HTTP, for tests and local development.

Production packages never import this package; only ``mtproxy.cmd`` and the tests do.
"""

__all__: list[str] = []
