"""Strict marshmallow fields, so a manifest is read the way the API server types it.

marshmallow's own fields coerce (``"yes"`` to ``True``, ``"5"`` to ``5``); the API server
refuses such values against a ``boolean``/``integer`` schema, and ``mtproxy check`` must
refuse what the cluster would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, post_dump, post_load

from mtproxy.api.durations import DURATION_PATTERN, format_duration, parse_duration_ms

__all__ = ["Duration", "ModelSchema", "StrictBoolean", "StrictInteger", "StrictString", "StringList", "StringMap"]


class StrictBoolean(fields.Boolean):
    """A JSON boolean and nothing else."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("must be a boolean (true or false)")
        return value


class StrictInteger(fields.Integer):
    """A JSON integer (not a boolean, not a string of digits)."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("must be an integer")
        return int(super()._deserialize(value, attr, data, **kwargs))


class StrictString(fields.String):
    """A JSON string."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError("must be a string")
        return value


class Duration(StrictString):
    """A duration string (``30s``, ``1m30s``), checked against optional bounds in milliseconds."""

    def __init__(self, *, min_ms: int | None = None, max_ms: int | None = None, **kwargs: Any) -> None:
        metadata = dict(kwargs.pop("metadata", {}))
        metadata.setdefault("pattern", DURATION_PATTERN)
        super().__init__(metadata=metadata, **kwargs)
        self.min_ms = min_ms
        self.max_ms = max_ms

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            ms = parse_duration_ms(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        too_small = self.min_ms is not None and ms < self.min_ms
        too_large = self.max_ms is not None and ms > self.max_ms
        if too_small or too_large:
            if self.min_ms is not None and self.max_ms is not None:
                raise ValidationError(f"must be a duration between {_human(self.min_ms)} and {_human(self.max_ms)}")
            if self.min_ms is not None:
                raise ValidationError(f"must be a duration of at least {_human(self.min_ms)}")
            assert self.max_ms is not None
            raise ValidationError(f"must be a duration of at most {_human(self.max_ms)}")
        return text


def _human(ms: int) -> str:
    """A bound as users write it: hours rather than days (``24h``, not ``1d``)."""
    if ms and ms % 3_600_000 == 0:
        return f"{ms // 3_600_000}h"
    return format_duration(ms)


class StringMap(fields.Dict):
    """A map of string to string, as ``labelSelectors``, ``extraLabels`` and ``headers`` are.

    Errors are keyed by the map key itself (marshmallow's own Dict wraps them in
    ``key``/``value``, which would collide with fields really named ``key``).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(keys=StrictString(), values=StrictString(), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValidationError("must be a map of string to string")
        errors: dict[str, list[str]] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                errors[repr(key)] = [f"map key {key!r} must be a string"]
            elif not isinstance(item, str):
                errors[key] = ["must be a string"]
        if errors:
            raise ValidationError(errors)
        return dict(value)


class StringList(fields.List[str]):
    """A list of strings, loaded as a tuple so frozen values stay immutable."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(StrictString(), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        return tuple(super()._deserialize(value, attr, data, **kwargs))


class ModelSchema(Schema):
    """Strict loading into a frozen dataclass (``__model__``), and dumping without nulls."""

    __model__: ClassVar[type[Any]]

    class Meta:
        unknown = RAISE

    @post_load
    def _to_model(self, data: dict[str, Any], **kwargs: Any) -> Any:
        return self.__model__(**data)

    @post_dump
    def _drop_nulls(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {k: v for k, v in data.items() if v is not None}
