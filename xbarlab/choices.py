"""Enums for parameter choices, parsed from their name or value (JSON stores names)."""

from __future__ import annotations

import enum
import re


class Choice(enum.Enum):
    """An Enum whose ``parse`` accepts a member, or its name or value in any case.

    Error messages name the parameter by the class name in snake case
    (``DacLoad`` -> ``dac_load``), which is how every choice is spelled as a field.
    """

    @classmethod
    def parse(cls, value):
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            for k in cls:
                if value.lower() in (k.name.lower(), k.value):
                    return k
        field = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
        raise ValueError(f"{field} must be one of {[k.name for k in cls]}, got {value!r}")
