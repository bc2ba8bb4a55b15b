"""A stored JSON artifact read back: bounded in bytes and in arrays and objects before it is parsed, then checked
against its schema (a pydantic model), so a damaged or planted file costs no more than the bound and is one
InputError naming it, never a traceback, nor a wrong value taken for a right one."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from ml_headcount.errors import InputError
from ml_headcount.io.storage import ArtifactStore, TooLargeError

MAX_ARTIFACT_BYTES = 16 * 2**20  # the manifest, lists and queries of a 150-category run are a few MB
# JSON's cheapest values cost the most once parsed: `[],` is 3 bytes and a 56-byte list (45 MB of them cost 1.15 GB)
MAX_CONTAINERS = 1_000_000

Schema = TypeVar("Schema", bound=BaseModel)


def read_artifact(store: ArtifactStore, key: str, schema: type[Schema], max_bytes: int = MAX_ARTIFACT_BYTES) -> Schema:
    """The artifact at `key`, validated by `schema`; an InputError naming it when it is too large, not JSON or not of
    that shape (FileNotFoundError when it is not there: what that means is the caller's to say)."""
    where = f"{store.location(key)}: not a run's {PurePosixPath(key).name}"
    try:
        data = store.read_bounded(key, max_bytes)
    except TooLargeError:
        raise InputError(f"{where}: larger than {max_bytes:,} bytes, not read") from None
    containers = data.count(b"[") + data.count(b"{")
    if containers > MAX_CONTAINERS:
        raise InputError(f"{where}: {containers:,} arrays and objects, over {MAX_CONTAINERS:,}; not parsed")
    try:
        document = json.loads(data)
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise InputError(f"{where}: not JSON ({error})") from None
    try:
        return schema.model_validate(document)
    except ValidationError as error:
        raise InputError(f"{where}: {_first_problem(error)}") from None


def _first_problem(error: ValidationError) -> str:
    """Where the first violation is and what it is, with how many more there are."""
    problems = error.errors()
    first = problems[0]
    place = ".".join(map(str, first["loc"])) or "the document"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{place}: {first['msg']}{more}"
