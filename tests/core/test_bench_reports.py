"""What the circuit-core benchmarks' pages say about the machine and the goals (not their numbers:
speed is never a unit test). Synthetic rows only."""

import importlib.metadata

from scripts import load_benchmark


def _peer_row(n: int) -> dict:
    row = dict(size=n, vectors=1, goal_met=True, agreement_badcrossbar=1e-14, agreement_g_nonideal=0.0,
               speedup_simulate=4.0, speedup_g_nonideal=4.0)
    for tool in ("badcrossbar", "simulate", "g_nonideal"):
        row.update({f"{tool}_s": 0.01, f"{tool}_peak_mib": 1.0, f"{tool}_warm_up_s": 0.01})
    return row


def test_bench_peers_names_the_installed_badcrossbar_version(tmp_path, monkeypatch):
    """The version on the page is the installed package's (its metadata), never an assumed one; the
    page is written without importing badcrossbar."""
    peers = load_benchmark("bench_peers")
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.8.7" if name == "badcrossbar" else real(name))
    peers.write_report([_peer_row(16)], tmp_path, (0.5, 0.6), 1)
    text = (tmp_path / "bench_peers.md").read_text()
    assert "badcrossbar 9.8.7 (PyPI)" in text

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, "version", missing)
    peers.write_report([_peer_row(16)], tmp_path, (0.5, 0.6), 1)
    assert "badcrossbar version unknown (PyPI)" in (tmp_path / "bench_peers.md").read_text()
