"""MOSFET model cards for the 1T-1R access transistor: the shipped default and the validator of user cards.

A model card is code that ngspice reads, so no card text reaches a deck as
written. ``check_card`` parses a card file into a ``ModelCard`` (one NMOS
model, BSIM4 ``level=54``, its parameters as numbers) and refuses anything
but comments, ``.model`` and ``.param`` lines and their ``+`` continuations:
no ``.control``, ``.include``, ``.lib``, ``shell``, subcircuits, elements,
expressions or braces. ``ModelCard.deck_lines`` then writes the model again
from the parsed numbers, under a name xbarlab generates, in the one form the
ngspice adapter accepts (``xbarlab.engines.ngspice.check_deck``).

The shipped card, ``freepdk45_nmos_vtg.inc``, is FreePDK45's nominal
NMOS_VTG (a customized PTM 45 nm BSIM4 card, Apache License 2.0); its
source and terms are in ``README.md`` beside it.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from pathlib import Path

CARD_DIR = Path(__file__).resolve().parent
DEFAULT_CARD = CARD_DIR / "freepdk45_nmos_vtg.inc"
DEFAULT_MODEL = "nmos_vtg"
DECK_MODEL = "xbnmos"  # the name every deck gives the access transistor's model
MAX_CARD_BYTES = 1_000_000
MAX_PARAMS = 2000
_PER_LINE = 4

_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_NUMBER = re.compile(r"([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?)(meg|mil|[tgkmunpf])?")
_SCALE = {"t": 1e12, "g": 1e9, "meg": 1e6, "k": 1e3, "mil": 25.4e-6, "m": 1e-3, "u": 1e-6, "n": 1e-9,
          "p": 1e-12, "f": 1e-15, None: 1.0}
_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True)
class ModelCard:
    """One validated NMOS model: its name in the card file and its parameters.

    Attributes:
        name: the model's name in the card (lower case), e.g. ``"nmos_vtg"``.
        level: the SPICE model level (54: BSIM4, the only one accepted).
        params: ``(name, value)`` pairs in card order, names lower case, values
            finite numbers in the card's SI units (scale suffixes resolved);
            ``version`` is kept as its literal (``"4.8"``).
        source: where the card came from (a path, for messages only; never
            written into a deck).
    """

    name: str
    level: int
    params: tuple
    source: str = ""

    def __post_init__(self) -> None:
        # deck_lines writes these into a deck: a card built directly, not by check_card, is held to its rules
        if not isinstance(self.name, str) or not isinstance(self.source, str):
            raise ValueError(f"name and source must be strings, got {self.name!r}, {self.source!r}")
        if isinstance(self.level, bool) or self.level != 54:
            raise ValueError(f"level must be 54 (BSIM4), got {self.level!r}")
        try:
            pairs = [(k, v) for k, v in self.params]
        except (TypeError, ValueError):
            raise ValueError(f"params must be (name, value) pairs, got {self.params!r:.80}") from None
        out = []
        for k, v in pairs:
            if not isinstance(k, str) or not _NAME.fullmatch(k) or k == "level":
                raise ValueError(f"parameter name must match [a-z][a-z0-9_]* (not level), got {k!r:.80}")
            if k == "version":
                if not isinstance(v, str) or not _VERSION.fullmatch(v):
                    raise ValueError(f"version must be a number like 4.8, got {v!r:.40}")
            else:
                if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                    raise ValueError(f"parameter {k} must be a finite number, got {v!r:.40}")
                v = float(v)
            out.append((k, v))
        object.__setattr__(self, "level", 54)
        object.__setattr__(self, "params", tuple(out))

    def deck_lines(self, deck_name: str = DECK_MODEL) -> list[str]:
        """The model as deck text: ``.model <deck_name> nmos level=54`` and ``+ p=v ...`` lines."""
        if not _NAME.fullmatch(deck_name):
            raise ValueError(f"deck_name must match [a-z][a-z0-9_]*, got {deck_name!r}")
        from ..netlist import spice_number

        items = [f"{k}={v}" if k == "version" else f"{k}={spice_number(v)}" for k, v in self.params]
        lines = [f"* access transistor model {self.name!s} (validated card, {len(items)} parameters)"
                 if _NAME.fullmatch(self.name) else "* access transistor model (validated card)",
                 f".model {deck_name} nmos level={self.level}"]
        for k in range(0, len(items), _PER_LINE):
            lines.append("+ " + " ".join(items[k:k + _PER_LINE]))
        return lines


def _value(text: str, params: dict, where: str) -> float:
    m = _NUMBER.fullmatch(text)
    if m:
        v = float(m.group(1)) * _SCALE[m.group(2)]
    elif _NAME.fullmatch(text) and text in params:
        v = params[text]
    else:
        raise ValueError(f"{where}: value {text[:40]!r} is not a number (expressions, braces, quotes and "
                         "undefined parameters are refused)")
    if not math.isfinite(v):
        raise ValueError(f"{where}: value {text[:40]!r} is not finite")
    return v


def _assignments(body: str, where: str) -> list[tuple[str, str]]:
    """``name = value`` pairs of a card line (spaces around ``=`` allowed, parentheses ignored)."""
    body = body.replace("(", " ").replace(")", " ")
    tokens = re.sub(r"\s*=\s*", "=", body.strip()).split()
    out = []
    for tok in tokens:
        name, eq, val = tok.partition("=")
        if not eq or not _NAME.fullmatch(name) or not val:
            raise ValueError(f"{where}: {tok[:40]!r} is not a name=value parameter")
        out.append((name, val))
    return out


def check_card(text: str, model: str = DEFAULT_MODEL, source: str = "") -> ModelCard:
    """Parse and validate a card's text; return the NMOS model named ``model``. ValueError otherwise.

    Accepted lines (case-insensitive): blank lines, comments (``*``), a
    ``.model <name> nmos|pmos [level=N] ...`` line with ``+`` continuation
    lines of ``name = value`` pairs, and ``.param name = value`` lines whose
    names model values may use. Values are plain numbers with optional SPICE
    scale suffixes (``1n``, ``3meg``). Everything else is refused, naming the
    line. The named model must exist, be an NMOS, have ``level=54``
    (BSIM4) and no parameter twice.
    """
    if not isinstance(text, str):
        raise ValueError(f"card must be text, got {type(text).__name__}")
    if len(text.encode("utf-8", "replace")) > MAX_CARD_BYTES:
        raise ValueError(f"card is larger than {MAX_CARD_BYTES} bytes, refused")
    if not isinstance(model, str) or not _NAME.fullmatch(model.lower()):
        raise ValueError(f"model must be a model name matching [a-z][a-z0-9_]*, got {model!r}")
    model = model.lower()
    label = source or "card"
    params: dict[str, float] = {}
    models: dict[str, tuple[str, list]] = {}
    current: list | None = None
    for no, raw in enumerate(text.splitlines(), start=1):
        where = f"{label} line {no}"
        if any(not (c == "\t" or " " <= c <= "~") for c in raw):
            raise ValueError(f"{where}: non-printable or non-ASCII character, refused")
        line = raw.strip().lower()
        if not line or line.startswith("*"):
            continue
        if line.startswith("+"):
            if current is None:
                raise ValueError(f"{where}: continuation line outside a .model, refused: {raw[:60]!r}")
            current.extend(_assignments(line[1:], where))
        elif line.startswith(".model"):
            parts = line.split(None, 3)
            if len(parts) < 3 or parts[0] != ".model":
                raise ValueError(f"{where}: malformed .model line: {raw[:60]!r}")
            name, kind = parts[1], parts[2].split("(")[0]
            if not _NAME.fullmatch(name):
                raise ValueError(f"{where}: model name {name[:40]!r} must match [a-z][a-z0-9_]* "
                                 "(binned models such as nch.1 are not supported)")
            if kind not in ("nmos", "pmos"):
                raise ValueError(f"{where}: model {name!r} must be nmos or pmos, got {kind[:20]!r}")
            if name in models:
                raise ValueError(f"{where}: model {name!r} is defined twice")
            current = []
            models[name] = (kind, current)
            rest = parts[2][len(kind):] + (" " + parts[3] if len(parts) > 3 else "")
            current.extend(_assignments(rest, where))
        elif line.startswith(".param"):
            current = None
            if not line.startswith(".param "):
                raise ValueError(f"{where}: malformed .param line: {raw[:60]!r}")
            for name, val in _assignments(line[len(".param"):], where):
                if name in params:
                    raise ValueError(f"{where}: parameter {name!r} is defined twice")
                params[name] = _value(val, params, where)
        else:
            raise ValueError(f"{where}: only comments, .model, .param and '+' lines are allowed in a card, "
                             f"refused: {raw[:60]!r}")
    if model not in models:
        raise ValueError(f"{label}: defines no model {model!r} (it defines {sorted(models)})")
    kind, items = models[model]
    if kind != "nmos":
        raise ValueError(f"{label}: model {model!r} must be an nmos (the access transistor), got {kind}")
    out, seen, level = [], set(), None
    for name, val in items:
        where = f"{label} model {model!r}"
        if name in seen:
            raise ValueError(f"{where}: parameter {name!r} is given twice")
        seen.add(name)
        if name == "level":
            level = _value(val, params, where)
        elif name == "version":
            if not _VERSION.fullmatch(val):
                raise ValueError(f"{where}: version must be a number like 4.8, got {val[:20]!r}")
            out.append((name, val))
        else:
            out.append((name, _value(val, params, where)))
    if level != 54:
        raise ValueError(f"{label} model {model!r}: level must be 54 (BSIM4), got {level!r}")
    if len(out) > MAX_PARAMS:
        raise ValueError(f"{label} model {model!r}: more than {MAX_PARAMS} parameters, refused")
    return ModelCard(name=model, level=54, params=tuple(out), source=str(source))


def load_card(path=None, model: str | None = None) -> ModelCard:
    """Read and validate the card file at ``path`` (None: the shipped FreePDK45 NMOS_VTG card).

    ``model`` names the model the deck uses (default ``"nmos_vtg"``).
    The file is read with a size bound before it is parsed.
    """
    p = DEFAULT_CARD if path is None or path == "" else Path(path)
    if not p.is_file():  # a device or a pipe could block or never end
        raise ValueError(f"card file {str(p)!r} cannot be read: not a regular file")
    try:
        with open(p, "rb") as fh:
            data = fh.read(MAX_CARD_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"card file {str(p)!r} cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_CARD_BYTES:
        raise ValueError(f"card file {str(p)!r} is larger than {MAX_CARD_BYTES} bytes, refused")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"card file {str(p)!r} is not ASCII text, refused") from None
    return check_card(text, model or DEFAULT_MODEL, source=p.name)
