"""The tenant query proxy: routes, authentication, PromQL enforcement, backends."""

__all__: list[str] = []
