"""Reject reason codes: why the transform refused a row. One code, one meaning, everywhere."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    MALFORMED_ROW = "MALFORMED_ROW"
    """The row could not be parsed into the record's columns."""
    MISSING_VALUE = "MISSING_VALUE"
    """A required field is empty."""
    NOT_A_NUMBER = "NOT_A_NUMBER"
    """A numeric field holds something that is not a number."""
    OUT_OF_RANGE = "OUT_OF_RANGE"
    """A number lies outside the field's allowed range."""
    NOT_ALLOWED = "NOT_ALLOWED"
    """A value is not one of the field's allowed values."""
