"""The shipped BSIM4 card and the validator of user cards (xbarlab.cards): hostile cards never reach a deck."""

from __future__ import annotations

import hashlib

import pytest

from xbarlab.cards import CARD_DIR, DEFAULT_CARD, DECK_MODEL, check_card, load_card
from xbarlab.engines.ngspice import check_deck
from xbarlab.netlist_1t1r import netlist_1t1r
from xbarlab.params import CircuitParams
from xbarlab.transistor import AccessTransistor

GOOD = """* a small BSIM4 card
.param vt = 0.41
.model Nfet NMOS level = 54
+ version = 4.8 vth0 = vt toxe = 1.14n
+ u0 = 0.045 vsat = 123k
"""


def test_shipped_card_is_the_documented_file():
    readme = (CARD_DIR / "README.md").read_text()
    digest = hashlib.sha256(DEFAULT_CARD.read_bytes()).hexdigest()
    assert digest in readme  # README states the file's sha256, source and licence
    assert "Apache License" in readme and (CARD_DIR / "LICENSE-APACHE-2.0.txt").exists()
    card = load_card()
    assert card.name == "nmos_vtg" and card.level == 54 and len(card.params) == 213
    assert dict(card.params)["version"] == "4.8" and dict(card.params)["vth0"] == 0.4106


def test_good_card_is_rewritten_from_numbers():
    card = check_card(GOOD, "nfet")
    p = dict(card.params)
    assert p["vth0"] == 0.41 and p["toxe"] == pytest.approx(1.14e-9, rel=1e-15) and p["vsat"] == 123e3
    lines = card.deck_lines()
    assert lines[1] == f".model {DECK_MODEL} nmos level=54"
    assert "vt" not in " ".join(lines[2:]).replace("vth0", "")  # the .param name is resolved, not written
    deck = netlist_1t1r([[1e-5]], [0.2], CircuitParams(), AccessTransistor())
    check_deck(deck)


@pytest.mark.parametrize("hostile, needle", [
    (".control\nshell rm -rf /\n.endc\n" + GOOD, ".control"),
    (GOOD + ".include /etc/passwd\n", ".include"),
    (GOOD + ".lib /tmp/x.lib tt\n", ".lib"),
    (GOOD + "shell touch /tmp/pwned\n", "shell"),
    (GOOD + "r1 a b 1k\n", "r1 a b"),
    (GOOD + ".subckt x a b\n.ends\n", ".subckt"),
    ("*ng_script\n" + GOOD + "+ b0 = {system('x')}\n", "not a"),
    (GOOD + "+ k1 = 'vt*2'\n", "not a number"),
    (GOOD + "+ k2 = undefined_param\n", "not a number"),
    (GOOD + "+ k3 = 1e999\n", "not finite"),
    (GOOD + "+ VTH0 = 0.5\n", "twice"),  # a case twin of vth0
    (GOOD.replace("level = 54", "level = 1"), "level must be 54"),
    (GOOD.replace("NMOS", "PMOS"), "must be an nmos"),
    (GOOD + ".model nfet nmos level=54\n", "defined twice"),
    (GOOD.replace("Nfet", "nch.1"), "binned"),
    (GOOD + "+ k1 = 0.4 \\\n", "not a name=value"),
    (GOOD + "+ k1\u00a0= 0.4\n", "non-ASCII"),
    ("+ vth0 = 0.4\n" + GOOD, "outside a .model"),
    (GOOD + ".param vt = 0.5\n", "defined twice"),
])
def test_hostile_cards_are_refused_naming_the_problem(hostile, needle):
    with pytest.raises(ValueError) as exc:
        check_card(hostile, "nfet", source="user.lib")
    assert needle in str(exc.value) and "user.lib" in str(exc.value)


def test_card_must_define_the_named_model_and_be_bounded(tmp_path):
    with pytest.raises(ValueError, match="defines no model 'nmos_vtg'"):
        check_card(GOOD)
    with pytest.raises(ValueError, match="model must be a model name"):
        check_card(GOOD, "x; shell")
    big = tmp_path / "big.lib"
    big.write_bytes(b"*" * 1_000_001)
    with pytest.raises(ValueError, match="larger than"):
        load_card(big)
    with pytest.raises(ValueError, match="cannot be read"):
        load_card(tmp_path / "missing.lib")
    with pytest.raises(ValueError, match="not a regular file"):
        load_card("/dev/zero")
    binary = tmp_path / "bin.lib"
    binary.write_bytes(b"\xff\xfe.model")
    with pytest.raises(ValueError, match="not ASCII"):
        load_card(binary)


def test_user_card_file_goes_through_the_validator(tmp_path):
    ok = tmp_path / "my.lib"
    ok.write_text(GOOD)
    acc = AccessTransistor(card=str(ok), model="NFET")
    assert acc.model == "nfet" and acc.model_card().source == "my.lib"
    bad = tmp_path / "bad.lib"
    bad.write_text(GOOD + ".control\nshell id\n.endc\n")
    with pytest.raises(ValueError, match="only comments, .model, .param"):
        AccessTransistor(card=str(bad), model="nfet")


@pytest.mark.parametrize("changes", [
    {"level": "54\n.control\nshell touch marker\n.endc\n*"},
    {"level": True},
    {"params": (("vth0\n.include /etc/passwd\n+ a", 0.3),)},
    {"params": (("vth0", "0.3\nshell id"),)},
    {"params": (("version", "4.8\nshell id"),)},
    {"params": (("vth0", True),)},
    {"params": (("vth0", float("nan")),)},
    {"params": (("level", 1.0),)},
    {"params": ("vth0",)},
    {"name": None},
])
def test_card_built_directly_is_held_to_the_validator_s_rules(changes):
    # ModelCard(...) took any level and any (name, value) and deck_lines wrote them as deck lines
    # (.control, .include, shell) into netlist_1t1r's deck
    from xbarlab.cards import ModelCard

    fields = {"name": "nfet", "level": 54, "params": (("version", "4.8"), ("vth0", 0.41))} | changes
    with pytest.raises(ValueError):
        card = ModelCard(**fields)
        netlist_1t1r([[1e-5]], [0.2], CircuitParams(), AccessTransistor(), card)


def test_card_built_directly_from_good_values_writes_the_same_deck():
    from xbarlab.cards import ModelCard

    card = check_card(GOOD, "nfet")
    again = ModelCard(name=card.name, level=54, params=tuple((k, v) for k, v in card.params))
    assert again == card and again.deck_lines() == card.deck_lines()
