"""The top of ``reports/index.md``: every headline number of the main job, with its target.

    python -m characterization.overview --out reports

Reads only the CSV files the other report steps saved (nothing is recomputed)
and writes the section between ``<!-- overview:begin -->`` and
``<!-- overview:end -->``, keeping the rest of the page. A missing input is
reported as missing, never silently left out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

BEGIN = "<!-- overview:begin -->"
END = "<!-- overview:end -->"


def _read(out: Path, name: str) -> pd.DataFrame | None:
    path = out / name
    return pd.read_csv(path) if path.exists() else None


def _met(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


def circuit_lines(out: Path) -> list[str]:
    L = ["## Circuit core (exact solver, G_non-ideal) against ngspice", ""]
    v = _read(out, "validation.csv")
    if v is None:
        L.append("- validation.csv missing: run `xbarlab validate --out reports`.")
    else:
        w = v.exact_vs_ngspice_rel.max(skipna=False)  # (a NaN case is NOT met; pandas' max skips it)
        L.append(f"- Exact solver vs ngspice, {len(v)} seeded crossbars up to 64x64: largest relative difference "
                 f"{w:.2g} (target <= 1e-9: {_met(w <= 1e-9)}); `V @ g_nonideal` vs simulate "
                 f"{v.gnonideal_vs_exact_rel.max(skipna=False):.2g}. [validation.md](validation.md)")
    b = _read(out, "bench_g_nonideal.csv")
    if b is None:
        L.append("- bench_g_nonideal.csv missing: run `python benchmarks/bench_g_nonideal.py --out reports`.")
    else:
        for _, r in b.dropna(subset=["target_s"]).iterrows():
            # the goals are checked on one BLAS thread (bench_g_nonideal.md), where the CSV has that column
            t = r.g_nonideal_one_blas_thread_s if "g_nonideal_one_blas_thread_s" in b else r.g_nonideal_median_s
            L.append(f"- G_non-ideal {r['size']}: median {t * 1e3:.3g} ms"
                     f"{' on one BLAS thread' if 'g_nonideal_one_blas_thread_s' in b else ''} "
                     f"(target <= {r.target_s * 1e3:.0f} ms: {_met(t <= r.target_s)})")
        st = _read(out, "bench_g_nonideal_stack.csv")
        if st is not None and "row_sweep_tiles_per_s" in st:
            s = st.iloc[0]
            # the benchmark's median of alternating pairs where it saved one, else the ratio of its two rates
            ratio = (s.row_sweep_ratio if "row_sweep_ratio" in st and pd.notna(s.row_sweep_ratio)
                     else s.tiles_per_s / s.row_sweep_tiles_per_s)
            L.append(f"- g_nonideal_stack {s.tile_size}: {s.tiles_per_s:.0f} tiles/s (target >= "
                     f"{s.goal_tiles_per_s:.0f}: {_met(s.tiles_per_s >= s.goal_tiles_per_s)}); {ratio:.1f}x the row "
                     f"sweep in the same run (the goal as a ratio, >= {s.goal_ratio_to_row_sweep:.1f}x: "
                     f"{_met(ratio >= s.goal_ratio_to_row_sweep)}; this host's speed varies between runs)")
        r64 = b[b.n == 64]
        if len(r64):
            L.append(f"- 64x64 model generation: {r64.g_nonideal_median_s.iloc[0]:.3g} s here vs 61 s in the RxNN paper. "
                     "[bench_g_nonideal.md](bench_g_nonideal.md)")
    return L + [""]


def _preset_of_page(out: Path, md: str) -> str | None:
    """The preset a page says it ran on (``Preset `NAME``` in its markdown), or None."""
    import re

    path = out / md
    m = re.search(r"[Pp]reset `([^`]+)`", path.read_text()) if path.exists() else None
    return m.group(1) if m else None


def _characterization_preset(out: Path) -> str | None:
    import json

    path = out / "fig2bc_size.json"
    return json.loads(path.read_text()).get("hardware", {}).get("name") if path.exists() else None


def _same_preset(name: str | None, ref: str | None) -> str:
    if name is None or ref is None:
        return ""
    base = name.split("+")[0]
    return "" if base == ref.split("+")[0] else f" (**DIFFERENT preset** from Fig. 2/3's `{ref}`)"


FIG10_STEMS = ("fcm_accuracy", "fcm_accuracy_rpd200")  # the preset's R_PD, and the strong DAC load (Makefile)


def fcm_lines(out: Path) -> list[str]:
    """Fig. 10 and 11 headline numbers, each with the preset and DAC strength it ran on."""
    import json

    L = ["## Fast Crossbar Model against ngspice (Fig. 10, Fig. 11)", ""]
    ref = _characterization_preset(out)
    for stem in FIG10_STEMS:
        s = _read(out, f"{stem}_summary.csv")
        if s is None:
            if stem == FIG10_STEMS[0]:
                L.append(f"- {stem}_summary.csv missing: run `python -m characterization.fcm_accuracy --out reports`.")
            continue
        meta = out / f"{stem}_meta.json"
        info = json.loads(meta.read_text()) if meta.exists() else {}
        preset = info.get("preset")
        L.append(f"- Fig. 10 ([{stem}.md]({stem}.md)) ran on preset "
                 f"`{preset or _preset_of_page(out, stem + '.md') or '?'}`"
                 f"{' at R_PD = ' + format(info['r_pd'], 'g') + ' ohm' if 'r_pd' in info else ''}"
                 f"{', ' + ', '.join(f'{v} pairs at {k}x{k}' for k, v in info['pairs'].items()) if 'pairs' in info else ''}"
                 f"{_same_preset(preset, ref)}.")
        for _, r in s[s["size"] == s["size"].max()].iterrows():
            tgt = r.target_rel_pct
            status = f"target <= {tgt:g} %: {_met(bool(r.meets_target))}" if pd.notna(tgt) else "reported (paper MNSIM: 3.51 %)"
            L.append(f"  - {int(r['size'])}x{int(r['size'])} {r.model}: max per-column relative error vs ngspice "
                     f"{r.max_rel_pct:.3g} % ({status}); {r.max_deviation_pct_fs:.3g} % of full scale")
    sp = _read(out, "fcm_speed.csv")
    if sp is None:
        L.append("- fcm_speed.csv missing: run `python -m characterization.fcm_speed --out reports`.")
    else:
        at64 = sp[sp["size"] == 64].set_index("method")
        t = at64.seconds_per_vmm
        skipped = at64.status[at64.status != "ok"] if "status" in at64 else pd.Series(dtype=str)
        if "ngspice" in skipped.index:  # over its time budget on this machine (characterization/budget.py)
            L.append(f"- 64x64 speed-up over ngspice per VMM: not checked, ngspice {skipped['ngspice']} "
                     "(target >= 1e5x). [fcm_speed.md](fcm_speed.md)")
        elif {"ngspice", "fcm_batched", "fcm_single"} <= set(t.index):
            rb, rs = t["ngspice"] / t["fcm_batched"], t["ngspice"] / t["fcm_single"]
            pr = _preset_of_page(out, "fcm_speed.md")
            L.append(f"- 64x64 speed-up over ngspice per VMM (preset `{pr or '?'}`{_same_preset(pr, ref)}): "
                     f"{rb:.3g}x batched, {rs:.3g}x one vector at a time "
                     f"(target >= 1e5x: {_met(rb >= 1e5)} batched). [fcm_speed.md](fcm_speed.md)")
        else:  # a run without 64x64 (--sizes): the target was not judged, and the line must not vanish
            L.append("- 64x64 speed-up over ngspice per VMM: not checked, fcm_speed.csv has no 64x64 ngspice and FCM "
                     "times (target >= 1e5x). [fcm_speed.md](fcm_speed.md)")
    return L + [""]


def dnn_lines(out: Path) -> list[str]:
    L = ["## DNNs on crossbars (Fig. 12-16)", ""]
    a = _read(out, "dnn_fig12a_accuracy.csv")
    if a is None:
        L.append("- dnn_fig12a_accuracy.csv missing: run `python -m dnn_eval.experiments.fig12_accuracy --out reports`.")
    else:
        a = a if "dataset" in a else a.assign(dataset="digits")
        for (ds, net), g in a.groupby(["dataset", "network"], sort=False):
            parts = ", ".join(f"Cross{int(r.xbar)} {r.accuracy_nonideal:.3f}" for _, r in g.sort_values("xbar").iterrows())
            L.append(f"- {net}: FP32 {g.accuracy_fp32.iloc[0]:.3f}; non-ideal {parts} "
                     f"({int(g.n_samples.iloc[0])} {ds} test images)")
        L.append("- Figures: [12(a)](dnn_fig12a_accuracy.png), [12(b)](dnn_fig12b_energy.png), "
                 "[13](dnn_fig13_breakdown.png), [14](dnn_fig14_sensitivity.png), [15](dnn_fig15_retrain.png), "
                 "[16](dnn_fig16_features.png)")
    L += energy_scheme_lines(out)
    bd = _read(out, "bench_dnn.csv")
    if bd is None:
        L.append("- bench_dnn.csv missing: run `python benchmarks/bench_dnn.py --out reports`.")
    else:
        if "cpu" in bd:  # the ratios depend on the host: name it, and where every run's are
            L.append(f"- Speed measured on {bd['cpu'].iloc[0]} ({bd['date'].iloc[0]} UTC, code {bd['commit'].iloc[0]}); "
                     "the goal ratios of every run, by host: [bench_dnn.md](bench_dnn.md), its last table")
        for _, r in bd.iterrows():
            floor = ""
            if "floor_goal_ratio" in bd and pd.notna(r.floor_goal_ratio):
                # issue 12's floor goal is the separate scheme's on the differential pair (bench_dnn.md's `goal`)
                if "sensing" not in bd or (r.sensing == "separate" and r.get("mapping", "differential") == "differential"):
                    floor = f"; crossbar / tile-product floor = {r.floor_goal_ratio:.3g}x (issue 12: <= " \
                            f"{r.floor_target:g}x: {_met(r.floor_goal_ratio <= r.floor_target)}"
                else:
                    floor = f"; crossbar / tile-product floor = {r.floor_goal_ratio:.3g}x (no floor goal for " \
                            "this row"
                own = r.get("phase tile products (BLAS) s")
                if own is not None and pd.notna(own) and own < r.tile_products_s:
                    floor += f"; no lower bound on this machine: the floor's products took {1e3 * r.tile_products_s:.3g} " \
                             f"ms, the crossbar's own {1e3 * own:.3g} ms"
                if "converter_bound_floor_ratio" in bd and pd.notna(r.converter_bound_floor_ratio):
                    floor += f"; the converters' arithmetic alone puts the least reachable at " \
                             f"{r.converter_bound_floor_ratio:.3g}x"
                    if "bare_bound_floor_ratio" in bd and pd.notna(r.bare_bound_floor_ratio):
                        floor += f" (their kernels, warm), {r.bare_bound_floor_ratio:.3g}x (their bare " \
                                 "operations at L1 throughput)"
                floor += ")"
            L.append(f"- {r.benchmark}, batch {int(r.batch)}: crossbar / plain = {r.ratio:.3g}x "
                     f"(target <= {r.target:g}x: {_met(r.ratio <= r.target)}){floor} [bench_dnn.md](bench_dnn.md)")
    return L + [""]


def energy_scheme_lines(out: Path) -> list[str]:
    """One line: the range over the networks of each scheme's energy per inference against the default's."""
    e = _read(out, "dnn_energy_sensing.csv")
    if e is None:
        return []
    parts = []
    for (m, s), g in e.groupby(["mapping", "sensing"], sort=False):
        if (m, s) != ("differential", "separate"):
            parts.append(f"{m} mapping, {s} sensing {g.energy_vs_default.min():.3f}-{g.energy_vs_default.max():.3f}x")
    return [f"- Energy per inference at Cross64 against the default scheme (differential pair, separate ADCs), "
            f"over the {e.network.nunique()} networks: " + "; ".join(parts) +
            " (`dnn_eval.energy`'s counts per scheme) [dnn_energy_sensing.csv](dnn_energy_sensing.csv)"]


def write_overview(out: str | Path) -> Path:
    out = Path(out)
    L = [BEGIN, "# xbarlab report", "",
         "Written by `make report`. Every number below is read from a CSV of this run, and each target says "
         "whether this run met it. The characterization section further down states each of the paper's trends "
         "and whether it was reproduced.", ""]
    L += circuit_lines(out) + fcm_lines(out) + dnn_lines(out)
    L.append(END)
    text = "\n".join(L)
    page = out / "index.md"
    from .index import locked_page, replace_text

    with locked_page(page):  # other steps splice their sections into the same page
        old = page.read_text() if page.exists() else ""
        if BEGIN in old and END in old:
            new = old[: old.index(BEGIN)] + text + old[old.index(END) + len(END):]
        else:
            new = text + ("\n\n" + old.lstrip("\n") if old.strip() else "\n")
        replace_text(page, new)
    return page


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="reports")
    args = p.parse_args(argv)
    print(write_overview(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
