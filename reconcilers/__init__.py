"""Domain decisions: MetricAccess spec to remote-write jobs, access policies and backend sets."""

__all__: list[str] = []
