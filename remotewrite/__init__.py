"""The lossless forwarding pipeline: collect, relabel, label, encode, send."""

__all__: list[str] = []
