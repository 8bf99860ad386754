"""Enums for parameter choices, parsed from their name or value (JSON stores names)."""

from __future__ import annotations

import enum
import re


class Choice(enum.Enum):
    """An Enum whose ``parse`` accepts a member, or its name or value in any case.

    Error messages name the parameter by the class name in snake case
    (``DacLoad`` -> ``dac_load``), or by the ``field`` a caller passes where its field is spelled otherwise
    (``AccessTransistor.side``, ``InSituSettings.scheme``), and list the values, the spellings a user
    writes (``'rowsum'``; the upper-case names, which also parse, read as if they were the only ones).
    """

    @classmethod
    def parse(cls, value, field: str | None = None):
        """The member named or valued ``value`` (case-blind); ValueError naming ``field`` (default: the
        class name in snake case) otherwise."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            for k in cls:
                if value.lower() in (k.name.lower(), k.value):
                    return k
        field = field or re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
        raise ValueError(f"{field} must be one of {[k.value for k in cls]}, got {value!r}")
