"""The command line and the wiring: the one package that imports every other."""

__all__: list[str] = []
