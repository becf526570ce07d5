"""The error contract cannot drift: every ZeroserveError defined anywhere in zeroserve has a row in
api/error_responses.py's table (its HTTP status and each plane's name), or is listed there as never
answered, with the reason."""

from __future__ import annotations

import importlib
import pkgutil

import zeroserve
from zeroserve import errors
from zeroserve.api.error_responses import ERROR_TABLE, NOT_ANSWERED, error_code, rule_for
from zeroserve.error_codes import ErrorCode


def _zeroserve_errors() -> set[type[errors.ZeroserveError]]:
    """Every ZeroserveError subclass zeroserve defines: each module is imported first, so one declared
    outside errors.py is found too (`__main__` is skipped: importing it runs the CLI)."""
    for module in pkgutil.walk_packages(zeroserve.__path__, "zeroserve."):
        if not module.name.endswith(".__main__"):
            importlib.import_module(module.name)
    found: set[type[errors.ZeroserveError]] = set()
    pending = [errors.ZeroserveError]
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            if subclass.__module__.startswith("zeroserve."):
                found.add(subclass)
    return found


def test_every_zeroserve_error_has_a_row_in_the_error_table_or_a_reason_for_none() -> None:
    unlisted = sorted(
        f"{kind.__module__}.{kind.__qualname__}"
        for kind in _zeroserve_errors()
        if kind not in ERROR_TABLE and kind not in NOT_ANSWERED
    )

    assert not unlisted, f"add a row to ERROR_TABLE, or a reason to NOT_ANSWERED, for: {unlisted}"


def test_the_table_and_the_never_answered_list_do_not_overlap_and_each_reason_is_given() -> None:
    assert not set(ERROR_TABLE) & set(NOT_ANSWERED)
    assert all(reason.strip() for reason in NOT_ANSWERED.values())


def test_the_error_discovery_finds_the_errors_of_errors_py_and_their_subclasses() -> None:
    found = _zeroserve_errors()

    assert {errors.ValidationError, errors.Throttled, errors.TrainingJobFailed} <= found
    assert errors.MissingAuthentication in found  # a subclass of a subclass


def test_an_error_answers_with_its_own_row_and_a_never_answered_one_as_an_internal_failure() -> None:
    assert error_code(errors.MissingAuthentication("no key"), "control") == (
        ErrorCode.MISSING_AUTHENTICATION_TOKEN
    )
    assert error_code(errors.Throttled("full"), "runtime") == "ThrottlingException"
    never = rule_for(errors.TrainingJobFailed("bad script"))
    assert (never.status, never.code("control")) == (500, ErrorCode.INTERNAL_FAILURE)
