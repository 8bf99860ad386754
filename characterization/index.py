"""Write the characterization section of ``reports/index.md`` from the saved CSV and JSON files.

Every trend the RxNN paper states for Fig. 2 and Fig. 3 gets one line that
says whether this run reproduced it, with the number it was judged on. The
section sits between two marker comments, so other parts of the page are
left alone. If ``OUT/full/`` holds a full-count run, its page section is
written too.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from .technology import GROUPS, STRONG_DAC

BEGIN = "<!-- characterization:begin -->"
END = "<!-- characterization:end -->"


def _load(out: Path, name: str):
    import pandas as pd

    csv, js = out / f"{name}.csv", out / f"{name}.json"
    df = pd.read_csv(csv) if csv.exists() else None
    summary = json.loads(js.read_text()) if js.exists() else None
    return df, summary


def _yn(ok) -> str:
    return "**reproduced**" if ok else "**NOT reproduced**"


def _pct(x) -> str:
    return f"{100 * float(x):.3g} %"


def _preset_rows(df):
    return df[df["dac"] == "preset"] if "dac" in df else df


def size_trends(df) -> list[str]:
    lines = []
    strong = df[df["dac"] != "preset"] if "dac" in df else df.iloc[:0]
    df = _preset_rows(df)
    r_pd = f", R_PD = {df['r_pd_ohm'].iloc[0]:g} ohm" if "r_pd_ohm" in df and len(df) else ""
    sizes = sorted(df["N"].unique())
    if not sizes:  # every point on the preset's DAC failed: nothing was judged (an IndexError, or no lines at all)
        return [f"| {s} (Fig. 2(b)/(c)) | {_yn(False)}: no point on the preset's DAC finished (see the failed points) |"
                for s in ("Errors grow with N", "DAC+DRIVER dominates at small N",
                          "WIRE and SENSE as significant as DAC+DRIVER at large N")]
    nmin, nmax = sizes[0], sizes[-1]
    piv = {g: df[df["g_state"] == g].pivot(index="group", columns="N", values="error_last_col") for g in ("G_MIN", "G_MAX")}
    # every group at every size, NaN where all its points failed: a missing series fails its statements
    piv = {g: p.reindex(index=list(dict.fromkeys([*GROUPS, *p.index])), columns=sizes) for g, p in piv.items()}
    # one size left (the others' points all failed) has nothing to compare: no series is shown to rise
    bad = [] if len(sizes) > 1 else [f"only N={nmin}, nothing to compare"]
    for g, p in piv.items():
        for group, row in p.iterrows():
            vals = row.to_numpy()  # a failed (missing) point is NaN: the series is then not shown to rise
            if not (vals[1:] > vals[:-1]).all():
                gaps = [str(n) for n, v in row.items() if v != v]
                bad.append(f"{group}/{g}" + (f" (no point at N={', '.join(gaps)})" if gaps else ""))
    all_rows = "; ".join(f"{g}: ALL {_pct(p.loc['ALL', nmin])} at N={nmin} -> {_pct(p.loc['ALL', nmax])} at N={nmax}"
                         for g, p in piv.items() if "ALL" in p.index)
    lines.append(f"| Errors grow with N (ALL and each group, Fig. 2(b)/(c); criterion: strictly increasing in every "
                 f"series) | {_yn(not bad)}: {all_rows}"
                 + (f"; not monotonic: {', '.join(bad)}" if bad else "; every group and G state rises monotonically") + " |")
    for g, p in piv.items():
        others = {k: p.loc[k, nmin] for k in ("WIRE", "SENSE", "WIRE+SENSE") if k in p.index}
        dd = p.loc["DAC+DRIVER", nmin]
        ok = all(dd > v for v in others.values())
        note = ""
        s = strong[(strong["g_state"] == g) & (strong["N"] == nmin) & (strong["group"] == "DAC+DRIVER")]
        if len(s):
            sv = float(s["error_last_col"].iloc[0])
            beats = all(sv > v for v in others.values())
            note = (f"; on the preset's {s['dac'].iloc[0]} variant (R_PD = {s['r_pd_ohm'].iloc[0]:g} ohm) DAC+DRIVER is "
                    f"{_pct(sv)}, which {'would' if beats else 'would not'} dominate"
                    + ("" if ok else ": the trend fails because of the preset's one consistent DAC value, not of the model"))
        lines.append(f"| DAC+DRIVER dominates at small N ({g}, N={nmin}{r_pd}; criterion: larger than WIRE, SENSE and "
                     f"WIRE+SENSE) | {_yn(ok)}: DAC+DRIVER {_pct(dd)} vs "
                     + ", ".join(f"{k} {_pct(v)}" for k, v in others.items()) + note + " |")
    for g, p in piv.items():
        dd, w, s, ws = (p.loc[k, nmax] for k in ("DAC+DRIVER", "WIRE", "SENSE", "WIRE+SENSE"))
        ok = ws >= dd
        cross = [n for n in sizes if p.loc["WIRE", n] > p.loc["DAC+DRIVER", n]]
        lines.append(f"| WIRE and SENSE as significant as DAC+DRIVER at large N ({g}, N={nmax}; criterion: WIRE+SENSE "
                     f">= DAC+DRIVER) | {_yn(ok)}: "
                     f"WIRE {_pct(w)}, SENSE {_pct(s)}, WIRE+SENSE {_pct(ws)} vs DAC+DRIVER {_pct(dd)}; "
                     + (f"WIRE alone exceeds DAC+DRIVER from N={cross[0]}" if cross else "WIRE alone never exceeds DAC+DRIVER")
                     + f"; SENSE/DAC+DRIVER = {s / dd:.2g} at N={nmax} |")
    return lines


def mc_trends(sd, se, sf) -> list[str]:
    lines = []
    if sd:
        avg_mid = 0.5 * (sd["avg_error_min_col"] + sd["avg_error_max_col"])
        rel = sd["spread_per_col_mean"] / abs(avg_mid)
        ok = rel >= 0.1
        lines.append(f"| Errors show significant dynamism across crossbar states (Fig. 2(d); criterion: mean MAX-MIN "
                     f"spread >= 10 % of the AVG error) | {_yn(ok)}: spread / AVG = {rel:.2g}; over {sd['instances']} states the "
                     f"MAX-MIN spread per column is {_pct(sd['spread_per_col_min'])}..{_pct(sd['spread_per_col_max'])} "
                     f"(mean {_pct(sd['spread_per_col_mean'])}) against AVG errors of {_pct(sd['avg_error_min_col'])}.."
                     f"{_pct(sd['avg_error_max_col'])} |")
        ok = sd.get("argmax_col_distinct", 0) > 1 and sd.get("argmax_col_last_fraction", 1) < 1
        lines.append(f"| Any column can have the largest error, not always the last (Fig. 2(d); criterion: the worst "
                     f"column differs between states and is not always the last) | {_yn(ok)}: the "
                     f"worst column is the last one in {_pct(sd.get('argmax_col_last_fraction', float('nan')))} of the states; "
                     f"{sd.get('argmax_col_distinct')} distinct columns are the worst in some state |")
        ok = sd.get("avg_error_second_half", 0) > sd.get("avg_error_first_half", 0)
        lines.append(f"| Slight increase of error from first to last column (Fig. 2(d); criterion: AVG over the second "
                     f"half of the columns > first half) | {_yn(ok)}: AVG error "
                     f"{_pct(sd.get('avg_error_first_half', float('nan')))} over the first half of the columns, "
                     f"{_pct(sd.get('avg_error_second_half', float('nan')))} over the second |")
    if se:
        ok = se["spread_per_col_mean"] > 0
        lines.append(f"| Errors depend on the inputs (Fig. 2(e); criterion: spread > 0) | {_yn(ok)}: over {se['instances']} input vectors the "
                     f"MAX-MIN spread per column is {_pct(se['spread_per_col_min'])}..{_pct(se['spread_per_col_max'])} "
                     f"(mean {_pct(se['spread_per_col_mean'])}) |")
        if sd:
            ratio = se["spread_per_col_mean"] / sd["spread_per_col_mean"]
            ok = ratio <= 0.5
            lines.append(f"| Spread across inputs is noticeable but small next to the spread across states (criterion: "
                         f"ratio <= 0.5) | {_yn(ok)}: ratio {ratio:.2g}, mean spread "
                         f"{_pct(se['spread_per_col_mean'])} (inputs) vs {_pct(sd['spread_per_col_mean'])} (states). "
                         "Possible cause: our states are uniform random levels, which 64-cell column sums average out |")
        rng = se["avg_error_max_col"] - se["avg_error_min_col"]
        ok = rng > se["spread_per_col_mean"]
        lines.append(f"| Across inputs, the variance across columns is significant (Fig. 2(e); criterion: range of the "
                     f"AVG error over columns > mean per-column spread) | {_yn(ok)}: AVG error "
                     f"ranges over {_pct(rng)} across columns vs a mean per-column spread of {_pct(se['spread_per_col_mean'])} |")
    if sf:
        ok = sf["spread_per_col_mean"] > 0
        vo = sf.get("varonly_spread_per_col_mean")
        sigma = sf.get("hardware", {}).get("device", {}).get("variation", 0.1)  # (the run's preset, not the paper's)
        lines.append(f"| Variation (sigma/mu = {100 * sigma:g} %{': the preset has none' if sigma == 0 else ''}) spreads "
                     "the errors over hardware instances (Fig. 2(f); criterion: "
                     f"spread > 0; the paper gives no number) | {_yn(ok)}: "
                     f"over {sf['instances']} instances the MAX-MIN spread per column is {_pct(sf['spread_per_col_min'])}.."
                     f"{_pct(sf['spread_per_col_max'])} (mean {_pct(sf['spread_per_col_mean'])}); AVG "
                     f"{_pct(sf['avg_error_min_col'])}..{_pct(sf['avg_error_max_col'])}"
                     + (f"; variation alone: mean spread {_pct(vo)}" if vo is not None else "")
                     + " |")
    return lines


def run_history(path: Path, warn: bool = True) -> list | None:
    """The runs of ``characterize all`` logged in ``path`` ([] when it does not exist), or None when it
    cannot be read (one line on stderr if ``warn``): such a log is left as it is, and the run goes on."""
    if not path.exists():
        return []
    try:
        runs = json.loads(path.read_text()).get("runs", [])
        if isinstance(runs, list):
            return runs
    except (OSError, ValueError, AttributeError):
        pass
    if warn:
        print(f"xbarlab: warning: {path} is not a run log this version reads; left as it is, this run is not "
              "added to it", file=sys.stderr)
    return None


def section(out: Path, title: str, prefix: str = "") -> list[str]:
    size_df, ss = _load(out, "fig2bc_size")
    # a Monte Carlo figure whose every chunk failed saves its numbers as null: NaN, so that its statements read
    # NOT reproduced (every comparison with NaN is false) and its lines print nan, instead of a TypeError
    sd, se, sf = ({k: float("nan") if v is None else v for k, v in s.items()} if s else s
                  for s in (_load(out, n)[1] for n in ("fig2d_state", "fig2e_inputs", "fig2f_variation")))
    dac_df, sa = _load(out, "fig3a_dac")
    _, sb = _load(out, "fig3b_sneak")
    runs = run_history(out / "characterization_run.json", warn=False) or []
    rel = lambda name: f"{prefix}{name}.md"  # noqa: E731
    L = [f"## {title}", "", hardware_line(out), ""]
    if runs:
        L += ["Runs of `characterize all` into this folder (a task already in the sweep cache is not recomputed, so "
              "only a run that computed its tasks measures their cost):", "",
              "| finished (UTC) | mode | workers | tasks computed | tasks from cache | wall time | per figure |",
              "|---|---|---|---|---|---|---|"]
        for r in runs[-5:]:
            L.append(f"| {r['finished_at_utc']} | {r['mode']} | {r['workers']} | {r.get('tasks_computed', '?')} | "
                     f"{r.get('tasks_cached', '?')} | {r['wall_s_total']:.0f} s | "
                     + ", ".join(f"{k} {v:.0f} s" for k, v in r["wall_s"].items()) + " |")
        L.append("")
    failed = {n: s["failed"] for n, s in (("fig2bc_size", ss), ("fig2d_state", sd), ("fig2e_inputs", se),
                                          ("fig2f_variation", sf), ("fig3a_dac", sa), ("fig3b_sneak", sb)) if s and s.get("failed")}
    if failed:
        n_bad = sum(int(f.split(" x ", 1)[0]) for fs in failed.values() for f in fs)
        L += [f"**{n_bad} sweep points FAILED in {', '.join(failed)}** (why: see \"Failed points\" below and each "
              "figure's page). They are left out of every figure and number; a statement whose check failed reads "
              "NOT reproduced. A rerun retries them.", ""]
    L += ["Error = (I_ideal - I_nonideal) / I_ideal per column, everywhere (Fig. 3(a): the DAC's (V_ideal - V_out) / V_ideal).",
          "", "| paper's statement | this run |", "|---|---|"]
    if size_df is not None:  # (every point failed: a CSV of no rows, whose statements read NOT reproduced)
        L += size_trends(size_df)
    L += mc_trends(sd, se, sf)
    if dac_df is not None and sa:
        mx = sa["max_dac_error"]
        ok = len(mx) == 2 and max(mx.values()) > 2 * min(mx.values())
        L.append(f"| DAC output depends on the input code and the load (Fig. 3(a); criterion: the largest error "
                 f"differs by more than 2x between the loads) | {_yn(ok)}: largest DAC error "
                 + ", ".join(f"{_pct(v)} at R_load = {float(k) / 1e3:g} kOhm" for k, v in mx.items())
                 + f"; model vs ngspice within {sa['max_abs_diff_model_vs_ngspice_V']:.2g} V |")
    if sb and "preset" in sb:
        pr, fr = sb["preset"], sb.get("first_reversed_sweep_point")
        L.append(f"| Sneak path reverses the middle row's second-column cell (Fig. 3(b); criterion: i < 0 at the "
                 f"preset) | {_yn(sb['reversed'])} at the preset: i = {sb['i_cell_11_ngspice_A']:.3e} A in ngspice with "
                 f"r_row = {pr['r_row']:g}, r_col = {pr['r_col']:g} ohm, r_driver = {pr['r_driver']:g} ohm, R_sense = "
                 f"{pr['r_sense']:g} ohm; it reverses "
                 + sb.get("reverses", f"for R_sense above {sb['r_sense_threshold_ohm']:.4g} ohm")
                 + (f" (ngspice at {fr['r_sense_ohm']:.4g} ohm: i = {fr['i_cell_11_ngspice_A']:.3e} A)" if fr else "")
                 + ". The paper's parasitics are not in its text; with the preset's ASSUMED 100 ohm sense resistance "
                 "the column nodes stay below the middle row's 0.01 V |")
    L += ["", "### Figures and their numbers", ""]
    L += [" ".join(f"[![{n}]({prefix}{n}.png)]({rel(n)})" for n in
                   ("fig2bc_size", "fig2d_state", "fig2e_inputs", "fig2f_variation", "fig3a_dac", "fig3b_sneak")
                   if (out / f"{n}.png").exists()), ""]
    if size_df is not None and len(size_df):
        size_df = _preset_rows(size_df)
        L.append(f"[fig2bc_size]({rel('fig2bc_size')}): last-column error, ngspice at {ss['ngspice_points']} of {ss['points']} "
                 f"points (largest |ngspice - exact| error difference {ss['max_abs_diff_ngspice_vs_exact']:.2g}).")
        L.append("")
        for g in ("G_MIN", "G_MAX"):
            p = size_df[size_df["g_state"] == g].pivot(index="group", columns="N", values="error_last_col")
            L.append(f"{g} (error, %):")
            L.append("")
            L.append("| group | " + " | ".join(f"N={n}" for n in p.columns) + " |")
            L.append("|---|" + "---|" * len(p.columns))
            for grp, row in p.iterrows():
                L.append(f"| {grp} | " + " | ".join(f"{100 * v:.3g}" for v in row) + " |")
            L.append("")
        eng = size_df.groupby("N")["engine"].agg(lambda s: "/".join(sorted(set(s))))
        L.append("Engine per size: " + ", ".join(f"N={n}: {e}" for n, e in eng.items()) + ".")
        L.append("")
    for name, s, what in (("fig2d_state", sd, "states"), ("fig2e_inputs", se, "input vectors"), ("fig2f_variation", sf, "instances")):
        if s:
            L.append(f"[{name}]({rel(name)}): {s['N']}x{s['N']}, {s['instances']} {what} by the exact fast path "
                     f"({s.get('exact_task_s', s['exact_wall_s']):.0f} s of task time); {s['ngspice_instances']} of them re-run "
                     f"in ngspice ({s.get('ngspice_task_s', s['ngspice_wall_s']):.0f} s of task time), "
                     f"largest |error difference| {s['max_abs_diff_error_ngspice_vs_exact']:.2g}, largest relative current "
                     f"difference {s['max_rel_diff_current_ngspice_vs_exact']:.2g}. AVG error per column "
                     f"{_pct(s['avg_error_min_col'])}..{_pct(s['avg_error_max_col'])}; spread MAX-MIN per column "
                     f"{_pct(s['spread_per_col_min'])}..{_pct(s['spread_per_col_max'])}."
                     + (f" FAILED: {s['failed']}" if s.get("failed") else ""))
            L.append("")
    if sa:
        L.append(f"[fig3a_dac]({rel('fig3a_dac')}): {sa['points']} points, each in ngspice; largest |model - ngspice| "
                 f"{sa['max_abs_diff_model_vs_ngspice_V']:.2g} V.")
        L.append("")
    if sb:
        held = ("NOT CHECKED (its ngspice point failed)" if sb["reversed"] is None  # (None: no ngspice current)
                else "holds" if sb["reversed"] else "does NOT hold")
        L.append(f"[fig3b_sneak]({rel('fig3b_sneak')}): reversal {held} in ngspice; "
                 f"ngspice vs exact cell currents within {sb['max_rel_diff_ngspice_vs_exact']:.2g} (relative to the largest).")
        L.append("")
    fails = {n: s.get("failed") for n, s in (("fig2bc_size", ss), ("fig2d_state", sd), ("fig2e_inputs", se),
                                             ("fig2f_variation", sf), ("fig3a_dac", sa), ("fig3b_sneak", sb)) if s and s.get("failed")}
    L.append("Failed points: " + (json.dumps(fails) if fails else "none."))
    L.append("")
    return L


def hardware_line(out: Path) -> str:
    """The preset every figure of ``out`` ran on, and its DAC (read from the figures' JSON summaries)."""
    import re

    hw, legacy, strong = {}, [], True
    for name in ("fig2bc_size", "fig2d_state", "fig2e_inputs", "fig2f_variation", "fig3a_dac", "fig3b_sneak"):
        _, s = _load(out, name)
        if s and name == "fig2bc_size":  # (a summary without the key predates presets without the variant)
            strong = s.get("strong_dac", STRONG_DAC) is not None
        if s and "hardware" in s:
            h = s["hardware"]
            hw[name] = (h.get("name"), h["dac"]["r_pd"], h["dac"]["bits"], h["dac"]["v_read"])
        elif s:
            legacy.append(name)
    old = ""
    if legacy:
        md = out / f"{legacy[0]}.md"
        m = re.search(r"R_PD = ([0-9.eE+-]+) ohm", md.read_text()) if md.exists() else None
        old = (f"**not on the one preset**: {', '.join(legacy)} predate `xbarlab/presets/` as the single source of "
               "hardware values (their summaries record no spec; they ran on the former `characterization/technology.py`"
               + (f", R_PD = {float(m.group(1)):g} ohm" if m else "") + "); rerun `xbarlab characterize all` into this "
               "folder to put them on the preset.")
    if not hw:
        return "Hardware: " + (old or "no figure summaries found.")
    if len(set(hw.values())) > 1:
        return "Hardware: the figures ran on DIFFERENT specs: " + "; ".join(
            f"{n}: `{v[0]}` R_PD = {v[1]:g} ohm" for n, v in hw.items()) + (" " + old if old else "")
    name, r_pd, bits, v_read = next(iter(hw.values()))
    which = "every figure" if not legacy else ", ".join(hw)
    return (f"Hardware: {which} ran on the one preset `{name}` (`xbarlab/presets/{name.split('+')[0]}.json`, "
            f"each value with its source or an ASSUMED/DERIVED mark and the reason); DAC {bits} bit, v_read = "
            f"{v_read:g} V, R_PD = {r_pd:g} ohm."
            + (f" Fig. 2(b)/(c) also shows DAC+DRIVER on the preset's {STRONG_DAC} variant." if strong else "")
            + (" " + old if old else ""))


def write_index(out: str | Path) -> Path:
    """(Re)write the characterization section of ``out/index.md``; returns the page path."""
    out = Path(out)
    L = [BEGIN, "# Characterization: RxNN Fig. 2 and Fig. 3", "",
         "Regenerate with `xbarlab characterize all --out reports` "
         "(`--full` for the full-count run in `reports/full/`).", ""]
    L += section(out, "This run")
    if (out / "full" / "fig2bc_size.csv").exists():
        L += section(out / "full", f"Full-count run (`{out.name}/full/`)", prefix="full/")
    L.append(END)
    return splice(out / "index.md", BEGIN, END, "\n".join(L) + "\n")


@contextlib.contextmanager
def locked_page(page: Path):
    """Hold an exclusive lock for ``page`` (``.cache/NAME.lock`` beside it) while it is read and rewritten:
    the report steps that run side by side (``characterization.report --jobs``) each splice their own
    section of ``index.md``, and none may lose another's."""
    import fcntl

    lock = page.parent / ".cache" / f"{page.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def replace_text(page: Path, text: str) -> None:
    """Write ``page`` whole or not at all (a temporary file renamed over it): a reader never sees half."""
    tmp = page.with_name(f".{page.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, page)


def splice(page: Path, begin: str, end: str, text: str) -> Path:
    """Put ``text`` (which starts with ``begin`` and ends with ``end``) into ``page`` in place of its
    ``begin`` ... ``end`` section, or append it when the page has none; the rest of the page is kept
    (under ``locked_page``)."""
    page = Path(page)
    with locked_page(page):
        old = page.read_text() if page.exists() else ""
        if begin in old and end in old:
            new = old[: old.index(begin)] + text.rstrip("\n") + old[old.index(end) + len(end):]
        else:
            new = (old.rstrip("\n") + "\n\n" if old.strip() else "") + text
        replace_text(page, new)
    return page
