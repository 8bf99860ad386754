"""Speed against an earlier git revision, in the same run: the circuit core, or dnn_eval inference.

    python benchmarks/bench_revisions.py --baseline 85af9f1 --out reports
    python benchmarks/bench_revisions.py --suite dnn --baseline REV --out reports

The baseline revision (and ``--new REV``, else the working tree) is exported
with ``git archive`` into a temporary folder; every timing runs in a fresh
interpreter with that tree first on ``PYTHONPATH`` (one BLAS thread),
alternating baseline and new in pairs (the order flips every pair). Each
ratio is the median over pairs of (new / baseline), so both sides see the
same machine load.

* ``--suite core`` (issue 10: the hardening may slow the exact solver by no
  more than 10 %): ``xb.solve`` (node voltages and currents), ``xb.simulate``
  and ``xb.g_nonideal`` at 16, 32 and 64, best of ``--reps`` calls;
  writes ``bench_revisions.md``.
* ``--suite dnn`` (issue 11: dnn_eval inference may not regress by more than
  5 %): ``benchmarks/bench_dnn.py``'s inference rows (trained ConvNet on
  digits, ResNet-18 shape at 3x32x32, batch ``--batch``, 64x64 crossbars of
  the ``spintronic`` preset with its default FCM options, the differential
  pair and the offset mapping), the same models, inputs and seeds, built
  only through public entry points that both revisions have. Each child
  times plain ``model(x)`` and crossbar ``xm(x)`` alternately (median of
  ``--reps``, ResNet-18 half of that, after one warm-up each). The plain
  network runs the same torch code in both trees, so its ratio shows the
  noise of the measurement. Writes ``bench_revisions_dnn.md``. Run it on a
  quiet machine: it is minutes per pair at the default sizes. On a shared,
  loaded machine use ``--interleave``: one long-lived process per tree builds
  every model once, then single plain and crossbar inferences alternate
  between the two processes (``--reps`` rounds per case, the order flipping
  every round), so both sides of each ratio see the load of the same second
  (the plain network's ratio then stays within about 1 % of 1, where separate
  children gave 0.66-1.30 under a load average of 4 on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CORE_CHILD = r'''
import json, sys, time
import numpy as np
import xbarlab as xb
n, reps = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(n)
G = 10 ** rng.uniform(-6, -4, (n, n))
V = rng.uniform(0, 0.25, n)
c = xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0)
calls = {"solve": lambda: xb.solve(G, V, c), "simulate": lambda: xb.simulate(G, V, c),
         "g_nonideal": lambda: xb.g_nonideal(G, c)}
out = {}
for name, f in calls.items():
    f()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter(); f(); best = min(best, time.perf_counter() - t0)
    out[name] = best
print(json.dumps(out))
'''

DNN_SETUP = r'''
import dataclasses, json, statistics, sys, time
import numpy as np
import torch
try:  # dnn_eval.convert since the crossbar.py split; older revisions have dnn_eval.crossbar
    from dnn_eval.convert import to_crossbar
except ImportError:
    from dnn_eval.crossbar import to_crossbar
from dnn_eval.evaluate import default_options, make_spec
from dnn_eval.loading import load_model
from dnn_eval.models import build_model
from xbarlab.params import CircuitParams
batch, reps, threads, cases = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(",")
torch.set_num_threads(threads)
torch.manual_seed(0)
g = torch.Generator().manual_seed(0)  # bench_dnn's inputs, in its order
spec = make_spec("spintronic", 64)
x = torch.rand((batch, 1, 8, 8), generator=g)
torch.randint(0, 10, (batch,), generator=g)
xr = torch.rand((batch, 3, 32, 32), generator=g)


def once(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def build(case):
    name, mapping = case.split(":")
    if name == "convnet":
        model, inp, sp, n = load_model("convnet").module, x, spec, reps
    else:
        model, inp = build_model("resnet18", (3, 32, 32), 10), xr
        sp, n = spec.replace(circuit=CircuitParams.ideal()), max(1, reps // 2)
    model = model.eval()
    t0 = time.perf_counter()
    xm = to_crossbar(model, sp, np.random.default_rng(0), dataclasses.replace(default_options(sp), mapping=mapping))
    return model, xm, inp, n, time.perf_counter() - t0
'''

DNN_CHILD = DNN_SETUP + r'''
out = {}
for case in cases:
    model, xm, inp, n, gen = build(case)
    tp, tx = [], []
    with torch.no_grad():
        once(lambda: model(inp))
        once(lambda: xm(inp))
        for _ in range(n):
            tp.append(once(lambda: model(inp)))
            tx.append(once(lambda: xm(inp)))
    out[case] = {"plain": statistics.median(tp), "crossbar": statistics.median(tx), "generate": gen}
print(json.dumps(out))
'''

#: ``--interleave``: every case built once, then one timed inference per line read ("CASE plain|crossbar")
DNN_SERVER = DNN_SETUP + r'''
built = {case: build(case) for case in cases}
with torch.no_grad():
    for model, xm, inp, _, _ in built.values():
        once(lambda: model(inp))
        once(lambda: xm(inp))
print("ready", flush=True)
for line in sys.stdin:
    case, which = line.split()
    model, xm, inp, _, _ = built[case]
    with torch.no_grad():
        print(once(lambda: (xm if which == "crossbar" else model)(inp)), flush=True)
'''


#: bench_dnn.py's inference rows: (model, mapping)
DNN_CASES = ("convnet:differential", "resnet18:differential", "convnet:offset", "resnet18:offset")


def resolve(rev: str) -> str:
    """The commit id of ``rev``; one-line ValueError when it is not a commit of this repository."""
    r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", "--end-of-options",
                        f"{rev}^{{commit}}"], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        raise ValueError(f"not a commit of this repository: {rev!r}")
    return r.stdout.strip()


def export(rev: str, dest: Path) -> Path:
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def run_child(tree: Path, code: str, *args) -> dict:
    """The JSON that ``code`` prints, run in a fresh interpreter with ``tree`` first on the path."""
    r = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                       env=child_env(tree), cwd=tree)
    if r.returncode != 0:
        raise RuntimeError(f"timing child failed in {tree}: {r.stderr.strip().splitlines()[-1:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def pairs(trees: dict, n_pairs: int, code: str, *args) -> list[dict]:
    """``n_pairs`` alternating runs of ``code`` in the baseline and new trees: [{label: result}, ...]."""
    out = []
    for p in range(n_pairs):
        order = list(trees.items())
        if p % 2:
            order.reverse()
        out.append({label: run_child(tree, code, *args) for label, tree in order})
    return out


def child_env(tree: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(tree), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def interleaved(trees: dict, n: int, cases: list, *args) -> list[dict]:
    """``--interleave``: one long-lived ``DNN_SERVER`` per tree, then per case ``n`` rounds of one plain and
    one crossbar inference in each tree, back to back (the order flips every round), so that both sides of
    each ratio see the machine's load of the same second. [{label: {case: {"plain", "crossbar"}}}, ...]."""
    procs = {label: subprocess.Popen([sys.executable, "-c", DNN_SERVER, *map(str, args), ",".join(cases)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=child_env(tree), cwd=tree) for label, tree in trees.items()}
    try:
        for label, p in procs.items():
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError(f"timing server failed in {trees[label]} (exit {p.wait()})")

        def timed(label, case, which):
            procs[label].stdin.write(f"{case} {which}\n")
            procs[label].stdin.flush()
            return float(procs[label].stdout.readline())

        runs = []
        for case in cases:
            for i in range(n):
                order = list(trees) if i % 2 == 0 else list(trees)[::-1]
                r = {label: {case: {"generate": 0.0}} for label in trees}
                for which in ("plain", "crossbar"):
                    for label in order:
                        r[label][case][which] = timed(label, case, which)
                runs.append(r)
        return runs
    finally:
        for p in procs.values():
            p.stdin.close()
            p.wait()


def median_ratio(runs: list[dict], key, field=None) -> float:
    def get(d):
        return d[key] if field is None else d[key][field]
    return statistics.median(get(r["new"]) / get(r["baseline"]) for r in runs)


def best(runs: list[dict], label: str, key, field=None) -> float:
    return min(r[label][key] if field is None else r[label][key][field] for r in runs)


def header(a, what: str, how: str, rounds: bool = False) -> list[str]:
    load = os.getloadavg()[0]
    new = f"`{a.new}`" if a.new else "the working tree"
    pairs_ = "" if rounds else f"{a.pairs} alternating pairs, "
    return [f"# {what}: {new} against revision `{a.baseline}`", "",
            f"`python benchmarks/bench_revisions.py {' '.join(a.argv)}`: {pairs_}{how}; "
            f"ratio = median over pairs of new / baseline (< 1 is faster). Load average at the end: {load:.1f} "
            f"on {os.cpu_count()} cores.", ""]


def suite_core(a, trees: dict) -> list[str]:
    rows = []
    for n in (16, 32, 64):
        runs = pairs(trees, a.pairs, CORE_CHILD, n, a.reps)
        for call in runs[0]["new"]:
            rows.append(dict(size=n, call=call, baseline_ms=1e3 * best(runs, "baseline", call),
                             new_ms=1e3 * best(runs, "new", call), ratio=median_ratio(runs, call)))
            print(f"{n}x{n} {call}: ratio {rows[-1]['ratio']:.3f}", flush=True)
    lines = header(a, "Circuit core speed", f"per size, best of {a.reps} calls per child, one BLAS thread")
    lines += ["| size | call | baseline (ms) | now (ms) | ratio | within +10 % |", "|---|---|---|---|---|---|"]
    for r in rows:
        ok = "yes" if r["ratio"] <= 1.10 else "**no**"
        lines.append(f"| {r['size']} | `{r['call']}` | {r['baseline_ms']:.2f} | {r['new_ms']:.2f} | "
                     f"{r['ratio']:.3f} | {ok} |")
    return lines


def suite_dnn(a, trees: dict) -> list[str]:
    cases = [c for c in DNN_CASES if c.split(":")[0] in a.models and not (a.no_offset and c.endswith("offset"))]
    if a.interleave:
        runs = interleaved(trees, a.reps, cases, a.batch, a.reps, a.threads)
        lines = header(a, "dnn_eval inference speed",
                       f"batch {a.batch}, {a.threads} torch thread(s); --interleave: one timing process per tree "
                       f"(every model built once), then per case {a.reps} rounds of one plain and one crossbar "
                       f"inference in each tree back to back (the order flips every round), each round a pair", rounds=True)
    else:
        runs = pairs(trees, a.pairs, DNN_CHILD, a.batch, a.reps, a.threads, ",".join(cases))
        lines = header(a, "dnn_eval inference speed",
                       f"batch {a.batch}, {a.threads} torch thread(s), median of {a.reps} crossbar inferences per "
                       f"child (ResNet-18: {max(1, a.reps // 2)}), plain and crossbar alternately")
    lines += ["| inference | mapping | baseline (ms) | now (ms) | ratio | plain network's ratio (noise) | "
              "within +5 % |", "|---|---|---|---|---|---|---|"]
    for c in cases:
        rc = [r for r in runs if c in r["new"]]  # (--interleave: each round times one case)
        ratio, noise = median_ratio(rc, c, "crossbar"), median_ratio(rc, c, "plain")
        name, mapping = c.split(":")
        ok = "yes" if ratio <= 1.05 else "**no**"
        lines.append(f"| {name} | {mapping} | {1e3 * best(rc, 'baseline', c, 'crossbar'):.2f} | "
                     f"{1e3 * best(rc, 'new', c, 'crossbar'):.2f} | {ratio:.3f} | {noise:.3f} | {ok} |")
        print(f"{c}: ratio {ratio:.3f} (plain {noise:.3f})", flush=True)
    fastest = "the fastest inference" if a.interleave else "the fastest child's median"
    return lines + ["", f"Times are {fastest}; the ratio is the median of the per-pair ratios."]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", choices=("core", "dnn"), default="core",
                    help="core: the exact solver and G_non-ideal; dnn: bench_dnn.py's inference rows")
    ap.add_argument("--baseline", default=None, help="git revision to compare against (core: default 85af9f1)")
    ap.add_argument("--new", default=None, help="git revision to measure (default: the working tree)")
    ap.add_argument("--pairs", type=int, default=5, help="alternating baseline/new pairs (core: per size)")
    ap.add_argument("--reps", type=int, default=None,
                    help="calls per child (core: the best is kept, default 7; dnn: the median, default 11)")
    ap.add_argument("--batch", type=int, default=128, help="dnn: images per inference")
    ap.add_argument("--threads", type=int, default=1, help="dnn: torch CPU threads")
    ap.add_argument("--models", default="convnet,resnet18", help="dnn: comma-separated subset of convnet,resnet18")
    ap.add_argument("--no-offset", action="store_true", help="dnn: skip the offset-mapping rows")
    ap.add_argument("--interleave", action="store_true",
                    help="dnn: one long-lived timing process per tree, single inferences alternating between "
                         "them (--reps rounds per case; --pairs unused): both sides see the same load")
    ap.add_argument("--out", type=Path, default=ROOT / "reports")
    a = ap.parse_args(argv)
    a.argv = list(sys.argv[1:] if argv is None else argv)
    if a.baseline is None:
        if a.suite == "dnn":
            ap.error("--suite dnn needs --baseline REV (the revision before the change)")
        a.baseline = "85af9f1"
    a.reps = a.reps if a.reps is not None else (7 if a.suite == "core" else 11)
    a.models = [m.strip() for m in a.models.split(",") if m.strip()]
    if a.pairs < 1 or a.reps < 1:
        ap.error("--pairs and --reps must be >= 1")
    if not 1 <= a.batch <= 65536:
        ap.error(f"--batch must be in 1..65536, got {a.batch}")
    if not 1 <= a.threads <= (os.cpu_count() or 1):
        ap.error(f"--threads must be in 1..{os.cpu_count()}, got {a.threads}")
    if not a.models or not set(a.models) <= {"convnet", "resnet18"}:
        ap.error(f"--models must be a comma-separated subset of convnet,resnet18, got {','.join(a.models)!r}")
    try:
        revs = {"baseline": resolve(a.baseline), "new": resolve(a.new) if a.new else None}
    except ValueError as exc:
        ap.error(str(exc))
    a.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        trees = {label: export(rev, Path(tmp) / label) if rev else ROOT for label, rev in revs.items()}
        lines = (suite_core if a.suite == "core" else suite_dnn)(a, trees)
    name = "bench_revisions.md" if a.suite == "core" else "bench_revisions_dnn.md"
    (a.out / name).write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
