"""What the circuit-core benchmarks' pages say about the machine and the goals (not their numbers:
speed is never a unit test). Synthetic rows and clocks only."""

import importlib.metadata

import numpy as np

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


def _size_row(g, n: int, t: float) -> dict:
    target = g.TARGET_S.get(n)
    return dict(size=f"{n}x{n}", n=n, g_nonideal_median_s=t, g_nonideal_one_blas_thread_s=t, g_nonideal_cpu_s=t,
                exact_sparse_g_nonideal_s=float("nan"), row_sweep_s=float("nan"), sweep_over_g_nonideal=float("nan"),
                ngspice_one_vmm_s=float("nan"), ngspice_g_nonideal_extrapolated_s=float("nan"), ngspice_status="",
                ngspice_reason="", paper_model_generation_s=float("nan"), peak_mib=float("nan"),
                process_peak_rss_mib=float("nan"), target_s=target, meets_target=g.meets(t, target))


def test_bench_g_nonideal_goal_without_a_time_is_not_measured(monkeypatch):
    """A size whose one-BLAS-thread time is missing (NaN) gets "not measured" against its goal, in the
    main table and in the floor section, never a NO or a yes; a size without a goal gets "–"."""
    g = load_benchmark("bench_g_nonideal")
    import g_nonideal_floor as fl

    assert g.meets(float("nan"), 0.01) == "not measured" and g.meets(0.005, 0.01) is True
    assert g.meets(0.02, 0.01) is False and g.meets(0.005, None) is None
    rows = [_size_row(g, 16, 1e-3), _size_row(g, 64, float("nan")), _size_row(g, 128, 0.03)]
    lines = g.page_lines(rows, [], 64, 0.1, 1.0, (0.5, 0.6), False)
    met = {ln.split(" | ")[0][2:]: ln.rstrip(" |").split(" | ")[-1] for ln in lines if ln.startswith("| 1") or
           ln.startswith("| 6")}
    assert met == {"16x16": "–", "64x64": "not measured", "128x128": "NO"}
    monkeypatch.setattr(fl, "dgemm_gflops", lambda n, one_thread: 50.0)
    monkeypatch.setattr(fl, "plan_flops", lambda n, tiles, circuit: 1e6)
    monkeypatch.setattr(fl, "stage_profile", lambda *a: {"leaves (lanes)": (1e-3, 1e6)})
    out = fl.floor_section(rows, 64, 0.1, 1, circuit=g.CIRCUIT, goal_tiles_s=g.STACK_TARGET,
                           one_thread=g.one_blas_thread, fmt=g.fmt)
    floor_rows = out[out.index("|---|---|---|---|---|---|---|") + 1:]  # the floor table, then the stages'
    why = {}
    for ln in floor_rows[:floor_rows.index("")]:
        why[ln.split(" | ")[0][2:]] = ln.rstrip(" |").split(" | ")[-1]
    assert why["64x64"] == "not measured" and why["128x128"].startswith("the rate")


def test_bench_g_nonideal_stack_ratio_is_the_median_of_alternating_pairs():
    """``paired_times``: the two calls alternate (the order flips every pair) and the ratio is the median of
    the per-pair ratios; the page's ratio against the goal is that one. A clock that ticks 1 s per
    g_nonideal_stack and 6 s per row sweep, except one pair under load (10 s and 20 s)."""
    g = load_benchmark("bench_g_nonideal")
    calls, ticks = [], iter([0, 1, 0, 6, 0, 20, 0, 10, 0, 1, 0, 6])
    f, s = lambda: calls.append("stack"), lambda: calls.append("sweep")
    t_stack, t_sweep, ratio = g.paired_times(f, s, 3, clock=lambda: next(ticks))
    assert calls == ["stack", "sweep", "sweep", "stack", "stack", "sweep"]
    assert (t_stack, t_sweep, ratio) == (1.0, 6.0, 6.0)  # pair ratios 6, 2, 6
    lines = g.page_lines([], [], 64, 0.1, 1.0, (0.5, 0.6), False, stack_ratio=ratio)
    text = "\n".join(lines)
    assert "this run: 6.0x (the median of the per-pair ratios, the two alternating; met: yes)" in text


def test_bench_g_nonideal_times_each_size_after_a_warm_up_at_that_size(monkeypatch):
    """The one-off work of a shape's first call (its elimination plan) is not timed: a g_nonideal that takes
    10 s at a shape's first call and 1 s after gives 1 s in both columns at 512 x 512 (one timed call)."""
    g = load_benchmark("bench_g_nonideal")
    clock, shapes = {"t": 0.0}, set()

    def fake(G, c):
        clock["t"] += 1.0 if G.shape in shapes else 10.0
        shapes.add(G.shape)

    monkeypatch.setattr(g.xb, "g_nonideal", fake)
    monkeypatch.setattr(g.median_time, "__defaults__", (lambda: clock["t"],))
    row = g.measure_size(512, np.random.default_rng(0), 10.0, False)
    assert (row["g_nonideal_median_s"], row["g_nonideal_one_blas_thread_s"]) == (1.0, 1.0)
