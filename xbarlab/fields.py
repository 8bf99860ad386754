"""The one check every ``from_dict`` of a parameter dataclass makes on its input."""

from __future__ import annotations


def check_known_fields(cls, d: dict) -> None:
    """ValueError naming ``cls`` and every key of ``d`` that is not one of its dataclass fields."""
    if not isinstance(d, dict):  # a JSON null or list in a spec file: set(d) raised TypeError
        raise ValueError(f"{cls.__name__}: fields must be a dict (a JSON object), got {type(d).__name__}")
    unknown = set(d) - set(cls.__dataclass_fields__)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
