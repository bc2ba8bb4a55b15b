"""Flow-level retries are for outages: a user error or a bug fails the flow run at once, an outage is retried."""

from __future__ import annotations

import pytest
from prefect import flow

from ml_headcount.errors import InputError
from tasks.policies import retried_only_if_transient

CALLS: list[str] = []


@flow(retries=1, retry_delay_seconds=0, persist_result=False)
@retried_only_if_transient
def failing(error: str) -> str:
    CALLS.append(error)
    if error == "user" or len(CALLS) == 1:
        raise InputError("cvs.csv: file not found") if error == "user" else ConnectionError("storage went away")
    return "done"


def test_a_user_error_is_not_retried_and_an_outage_is(prefect_harness):
    CALLS.clear()
    with pytest.raises(InputError):
        failing("user")
    assert CALLS == ["user"]

    CALLS.clear()
    assert failing("outage") == "done"
    assert CALLS == ["outage", "outage"]
