"""Which settings fields can change a result: every field, unless its definition marks it `MACHINE_ONLY`.

A machine-only field says how or where the work runs (chunk sizes, threads, devices, caches): results are equal
whichever value it takes, so it never enters a cache key and never travels to a Modal container. Marking it on the
field itself keeps that choice in one place, beside the field's description.
"""

from __future__ import annotations

from pydantic import BaseModel

MACHINE_ONLY = {"machine_only": True}


def machine_only_fields(section: type[BaseModel]) -> frozenset[str]:
    """The fields of `section` marked `MACHINE_ONLY`."""
    return frozenset(
        name
        for name, field in section.model_fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("machine_only")
    )


def result_fields(section: BaseModel) -> dict:
    """`section` as JSON-ready values, its machine-only fields left out: what a cache key takes of it."""
    return section.model_dump(mode="json", exclude=machine_only_fields(type(section)))
