"""CustomResourceDefinition handling: validating a CRD and turning it into served resources.

Contract reproduced from the apiextensions server, as far as clients can see it:

- A CRD must be named ``<plural>.<group>``, have a group, ``names.plural``/``names.kind``,
  a scope of ``Namespaced`` or ``Cluster``, at least one version, exactly one storage
  version and an ``openAPIV3Schema`` per version; otherwise 422 with field causes.
- Defaulting fills ``names.singular`` (lower-cased kind), ``names.listKind``
  (``<Kind>List``) and ``conversion.strategy: None``.
- On create and update the CRD is established at once: ``status.conditions`` get
  ``NamesAccepted`` and ``Established`` (``True``), ``acceptedNames`` mirrors the names and
  ``storedVersions`` lists the storage version. Every served version becomes a
  :class:`~.resources.ResourceInfo` with its schema (see :mod:`.schema`), status
  subresource and printer columns; without ``additionalPrinterColumns`` a version shows
  ``Age`` as the real server's default.

Not reproduced: name conflicts with other resources (NamesAccepted is always True),
conversion webhooks, the scale subresource and ``selectableFields``.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema

from .errors import FieldCause
from .resources import PrinterColumn, ResourceInfo
from .schema import ObjectSchema
from .strategy import now_timestamp

__all__ = ["default_crd", "established_status", "served_resources", "validate_crd"]

_AGE = PrinterColumn(
    name="Age",
    type="date",
    json_path=".metadata.creationTimestamp",
    description="CreationTimestamp is a timestamp representing the server time when this object was created.",
)


def default_crd(crd: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of the CRD with the real server's defaults filled in."""
    defaulted = copy.deepcopy(crd)
    spec = defaulted.setdefault("spec", {})
    names = spec.setdefault("names", {})
    kind = str(names.get("kind", ""))
    names.setdefault("singular", kind.lower())
    names.setdefault("listKind", f"{kind}List")
    spec.setdefault("conversion", {"strategy": "None"})
    return defaulted


def validate_crd(crd: dict[str, Any]) -> list[FieldCause]:
    """Return the 422 causes for a CRD the real server would refuse."""
    causes: list[FieldCause] = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural = spec.get("group", ""), names.get("plural", "")
    for path, value in (("spec.group", group), ("spec.names.plural", plural), ("spec.names.kind", names.get("kind"))):
        if not value:
            causes.append(FieldCause(field=path, reason="FieldValueRequired", message="Required value"))
    name = (crd.get("metadata") or {}).get("name", "")
    if group and plural and name != f"{plural}.{group}":
        causes.append(FieldCause(field="metadata.name", reason="FieldValueInvalid",
                                 message=f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(FieldCause(field="spec.scope", reason="FieldValueNotSupported",
                                 message=f'Unsupported value: "{spec.get("scope", "")}": supported values: '
                                         '"Cluster", "Namespaced"'))
    versions = spec.get("versions") or []
    if not versions:
        causes.append(FieldCause(
            field="spec.versions", reason="FieldValueInvalid",
            message="Invalid value: null: must have exactly one version marked as storage version",
        ))
        return causes
    if sum(1 for version in versions if version.get("storage")) != 1:
        causes.append(FieldCause(field="spec.versions", reason="FieldValueInvalid",
                                 message="Invalid value: must have exactly one version marked as storage version"))
    for index, version in enumerate(versions):
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        path = f"spec.versions[{index}].schema.openAPIV3Schema"
        if not version.get("name"):
            causes.append(FieldCause(field=f"spec.versions[{index}].name", reason="FieldValueRequired",
                                     message="Required value"))
        if not isinstance(schema, dict):
            causes.append(FieldCause(field=path, reason="FieldValueRequired",
                                     message="Required value: schemas are required"))
            continue
        try:
            ObjectSchema(schema)
        except jsonschema.SchemaError as exc:
            causes.append(FieldCause(field=path, reason="FieldValueInvalid", message=f"Invalid value: {exc.message}"))
    return causes


def established_status(crd: dict[str, Any], *, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the status the CRD controllers would settle on: names accepted, established."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    storage = [v["name"] for v in spec.get("versions", []) if v.get("storage")]
    old_status = (previous or {}).get("status") or {}
    stored = list(old_status.get("storedVersions") or [])
    for version in storage:
        if version not in stored:
            stored.append(version)
    since = {c.get("type"): c.get("lastTransitionTime") for c in old_status.get("conditions") or []}
    now = now_timestamp()
    conditions = [
        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found",
         "lastTransitionTime": since.get("NamesAccepted") or now},
        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
         "message": "the initial names have been accepted", "lastTransitionTime": since.get("Established") or now},
    ]
    return {"conditions": conditions, "acceptedNames": copy.deepcopy(names), "storedVersions": stored}


def _columns(version: dict[str, Any]) -> tuple[PrinterColumn, ...]:
    declared = version.get("additionalPrinterColumns") or []
    if not declared:
        return (_AGE,)
    return tuple(
        PrinterColumn(
            name=str(column.get("name", "")),
            type=str(column.get("type", "string")),
            json_path=str(column.get("jsonPath", "")),
            description=str(column.get("description", "")),
            format=str(column.get("format", "")),
            priority=int(column.get("priority", 0)),
        )
        for column in declared
    )


def served_resources(crd: dict[str, Any]) -> tuple[ResourceInfo, ...]:
    """Return one ResourceInfo per served version of a valid, defaulted CRD."""
    spec = crd["spec"]
    names = spec["names"]
    infos: list[ResourceInfo] = []
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        infos.append(ResourceInfo(
            group=spec["group"],
            version=version["name"],
            resource=names["plural"],
            singular=names.get("singular", ""),
            kind=names["kind"],
            list_kind=names.get("listKind", f"{names['kind']}List"),
            namespaced=spec.get("scope") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            has_status="status" in subresources,
            tracks_generation=True,
            custom=True,
            crd_name=crd["metadata"]["name"],
            schema=ObjectSchema(version["schema"]["openAPIV3Schema"]),
            printer_columns=_columns(version),
        ))
    return tuple(infos)
