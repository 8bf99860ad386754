"""Issue 11's size rule for the FCM wing: no file over about 400 lines, no class over about 250."""

from __future__ import annotations

import ast
from pathlib import Path

FCM = Path(__file__).resolve().parents[2] / "xbarlab" / "fcm"


def test_fcm_files_and_classes_stay_small():
    big = []
    for p in sorted(FCM.glob("*.py")):
        text = p.read_text()
        if len(text.splitlines()) > 400:
            big.append(f"{p.name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 250:
                big.append(f"{p.name}:{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not big, big


def test_every_fcm_folder_has_its_assumptions_readme():
    for d in ("fcm", "engines", "peripherals"):
        assert (FCM.parent / d / "README.md").exists(), d
