"""Fit the FCM's closed-form parameters against ngspice, check them on held-out samples.

Two parameters of the model are taken from the circuit rather than derived:

* ``load_factor`` (kappa): the ROWSUM DAC load is G_load = kappa * sum_j Gn[i, j];
* ``sinh_gamma`` (g): the sinh cell's operating point, f(V) = sinh(b g V) / (b g).

They are fitted together with scipy (``least_squares``, bounded, on the
per-column errors in % of full-scale output) on training samples - random crossbar states on the
device's levels and random DAC codes, solved by ngspice - and then checked
on held-out samples drawn from the same generator. The result is a plain
dict with its provenance (spec, seed, sample counts, ngspice version, date,
train and test errors) that ``save_fit`` writes as JSON.
"""

from __future__ import annotations

import datetime
import json
import subprocess
from pathlib import Path

import numpy as np

from ..engines.ngspice import NgspiceSettings, find_ngspice
from ..spec import CrossbarSpec
from ..fcm.model import FCM, DacLoad, FCMOptions
from .metrics import check_currents, column_errors
from .spice_reference import spice_currents

FITTED_DIR = Path(__file__).resolve().parent.parent / "presets" / "fitted"


def _count(name: str, n, lo: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {n!r}")
    return int(n)


def random_samples(spec: CrossbarSpec, n: int, rng: np.random.Generator):
    """n random (state G (M, N) in S, codes (M,)) pairs: uniform levels, uniform codes."""
    n = _count("n", n, 0)
    out = []
    for _ in range(n):
        G = spec.device.quantize(rng.random((spec.rows, spec.cols)))
        codes = rng.integers(0, spec.dac.full_code + 1, spec.rows).astype(float)
        out.append((G, codes))
    return out


def spice_reference(spec: CrossbarSpec, samples, settings: NgspiceSettings | None = None,
                    workers: int = 1) -> np.ndarray:
    """ngspice output currents (A), (n, N), one per sample; ``workers`` ngspice runs at once."""
    workers = _count("workers", workers)
    if not len(samples):
        raise ValueError("samples must hold at least one (G, codes) pair, got none")

    def one(sample):
        return spice_currents(sample[0], sample[1], spec, settings)[0]

    if workers <= 1:
        return np.stack([one(s) for s in samples])
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return np.stack(list(pool.map(one, samples)))


def tile_models(spec: CrossbarSpec, samples, options: FCMOptions) -> list[FCM]:
    """One single-tile FCM per sample state (G_non-ideal computed once)."""
    return [FCM.from_tiles(G[None, None, None], spec, options, G.shape, 1.0) for G, _ in samples]


def model_currents(spec: CrossbarSpec, samples, options: FCMOptions, models: list[FCM] | None = None) -> np.ndarray:
    """FCM output currents (A), (n, N), before the ADC, at each sample's codes: the first stage of
    ``FCM.matmul``'s own plan (``FCM.tile_currents``; tested equal to ``xbarlab.verify.reference``)."""
    models = models or tile_models(spec, samples, options)
    out = []
    for f, (_, c) in zip(models, samples):
        f = f if f.options == options else f.with_options(**options.to_dict())
        out.append(f.tile_currents(np.asarray(c, dtype=float)[None, :])[0, 0, 0, 0])
    return np.stack(out)


def error_pct_fs(I_model: np.ndarray, I_ref: np.ndarray, spec: CrossbarSpec) -> dict:
    """Max and RMS of |I_model - I_ref| in % of full-scale output (rows * g_max * v_read), and max and
    mean of the per-column relative error (``xbarlab.verify.metrics.column_errors``)."""
    e = np.abs(I_model - I_ref) / spec.full_scale_current_a * 100.0
    c = column_errors(I_model, I_ref, spec.full_scale_current_a)
    return {"max_pct_fs": float(e.max()), "rms_pct_fs": float(np.sqrt(np.mean(e**2))),
            "max_rel": c["max_rel"], "mean_rel": c["mean_rel"]}


def ngspice_version(settings: NgspiceSettings | None = None) -> str:
    try:
        exe = find_ngspice(settings or NgspiceSettings())
        out = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        for line in (out.stdout + out.stderr).splitlines():
            if "ngspice" in line.lower() and any(ch.isdigit() for ch in line):
                return line.strip().strip("*").strip()
    except Exception:  # noqa: BLE001 - provenance only
        pass
    return "unknown"


#: the bounds of every fitted parameter (a factor on its physical value; 1 = the closed form as derived)
FIT_BOUNDS = (0.5, 1.5)
FIT_BOUND_TOL = 1e-9  # a fitted value this close to a bound is at it (scipy's TRF stops within ~1e-16 there)

#: a fitted parameter must move the model's training currents by more than this fraction of their norm
#: per unit change: about 100 times the resolution of the finite-difference Jacobian in double precision
#: (sqrt(eps) |I|; measured: a parameter with no effect, sinh_gamma at b = 1e-9 /V, reads 0.5 sqrt(eps);
#: sinh_gamma at b = 0.05 /V, v_read 0.2 V reads 6e-6 and is recovered to 1e-5)
JAC_RTOL = 100.0 * float(np.sqrt(np.finfo(float).eps))


def _fit(spec, train, test, I_train, I_test, params: list[str], base: FCMOptions) -> dict:
    """Least-squares fit of ``params`` (each bounded to FIT_BOUNDS) on the training samples."""
    from scipy.optimize import least_squares

    m_train = tile_models(spec, train, base)
    m_test = tile_models(spec, test, base)
    fs = spec.full_scale_current_a

    def resid(p):
        opts = base.replace(**dict(zip(params, map(float, p))))
        return ((model_currents(spec, train, opts, m_train) - I_train) / fs * 100.0).ravel()

    res = least_squares(resid, x0=np.ones(len(params)), bounds=FIT_BOUNDS, x_scale=1.0, xtol=1e-10,
                        ftol=1e-15, gtol=1e-15)
    if not res.success:
        raise ValueError(f"the fit of {params} did not converge ({res.message}); more or other training samples")
    sv = np.linalg.svd(res.jac, compute_uv=False) if np.all(np.isfinite(res.jac)) else np.zeros(len(params))
    scale = float(np.linalg.norm(res.fun + (I_train / fs * 100.0).ravel()))  # the model's currents, % FS
    rank = int(np.sum(sv > JAC_RTOL * scale))
    if rank < len(params):
        raise ValueError(f"the fit of {params} is rank-deficient (Jacobian rank {rank} of {len(params)}): the "
                         f"training samples do not determine every parameter (e.g. all DAC codes 0, or a sinh b "
                         f"too small to resolve); use more or other training samples")
    best = dict(zip(params, map(float, res.x)))
    # a value at its bound is not a fitted value (the best one lies outside): kept, marked, never saved
    at_bound = sorted(k for k, v in best.items() if min(v - FIT_BOUNDS[0], FIT_BOUNDS[1] - v) < FIT_BOUND_TOL)
    fitted = base.replace(**best)

    def errs(opts):
        return {"train": error_pct_fs(model_currents(spec, train, opts, m_train), I_train, spec),
                "test": error_pct_fs(model_currents(spec, test, opts, m_test), I_test, spec)}

    return {
        "values": best,
        "bounds": list(FIT_BOUNDS),
        "optimizer": "scipy.optimize.least_squares on the per-column errors in % of full-scale output (train)",
        "fitted": errs(fitted),
        "unfitted (all 1.0)": errs(base),
        "at_bound": at_bound,
        "success": bool(res.success) and not at_bound,
    }


def fit(spec: CrossbarSpec, n_train: int = 20, n_test: int = 20, seed: int = 0,
        settings: NgspiceSettings | None = None, workers: int = 1) -> dict:
    """Fit ``load_factor`` (when the DAC has R_PD > 0) and ``sinh_gamma`` (sinh cells) for ``spec``.

    Draws n_train + n_test random samples from ``seed``, solves them with
    ngspice and calls ``fit_samples``. Errors are in % of full-scale output
    (rows * g_max * v_read).
    """
    n_train, n_test, workers = _count("n_train", n_train), _count("n_test", n_test), _count("workers", workers)
    rng = np.random.default_rng(seed)
    train = random_samples(spec, n_train, rng)
    test = random_samples(spec, n_test, rng)
    I_train = spice_reference(spec, train, settings, workers)
    I_test = spice_reference(spec, test, settings, workers)
    return fit_samples(spec, train, test, I_train, I_test, seed, settings)


def fit_samples(spec: CrossbarSpec, train, test, I_train, I_test, seed: int,
                settings: NgspiceSettings | None = None) -> dict:
    """The fit on given (G, codes) samples and their ngspice currents, with provenance.

    ValueError when train or test is empty, or I_train / I_test is not finite and (len(samples), cols)."""
    for name, smp, cur in (("train", train, I_train), ("test", test, I_test)):
        if not len(smp):
            raise ValueError(f"{name} must hold at least one (G, codes) sample, got none")
        a = check_currents(f"I_{name}", cur)
        if a.shape != (len(smp), spec.cols):
            raise ValueError(f"I_{name} must be ({len(smp)}, {spec.cols}): one current per sample and column, "
                             f"got shape {a.shape}")
    params = (["load_factor"] if spec.dac.r_pd > 0 else []) + (["sinh_gamma"] if spec.device.sinh_b > 0 else [])
    base = FCMOptions(dac_load=DacLoad.ROWSUM)
    result = _fit(spec, train, test, I_train, I_test, params, base) if params else {"values": {}}
    return {
        "spec": spec.to_dict(),
        "options": base.replace(**result["values"]).to_dict(),
        "fit": result,
        "provenance": {
            "reference": "ngspice .op of the full circuit (xbarlab.netlist.dac_netlist)",
            "ngspice": ngspice_version(settings),
            "seed": seed, "n_train": len(train), "n_test": len(test),
            "samples": "crossbar state uniform over the device levels, DAC codes uniform over 0..full "
                       "(xbarlab.verify.fitting.random_samples: train drawn first, then test)",
            "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "generator": "xbarlab.verify.fitting.fit_samples",
            "xbarlab_version": __import__("xbarlab").__version__,
        },
    }


def fit_path(spec: CrossbarSpec) -> Path:
    """Where the fit of a named preset at its size is kept."""
    nl = "_sinh" if spec.device.sinh_b > 0 else ""
    return FITTED_DIR / f"{spec.name or 'custom'}_{spec.rows}x{spec.cols}{nl}.json"


def save_fit(result: dict, path: str | Path) -> Path:
    """Write ``fit_samples``' result as JSON; ValueError for a fit that stopped at its bound (a saved fit
    is applied by every DNN study of its preset: a bound there is not a fitted value)."""
    at_bound = (result.get("fit") or {}).get("at_bound") if isinstance(result, dict) else None
    if at_bound:
        raise ValueError(f"the fit stopped at its bound {FIT_BOUNDS} for {at_bound} ({result['fit']['values']}): "
                         "not saved; the FCM's closed form does not describe this circuit within the bounds")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def fit_circuit(spec: CrossbarSpec) -> dict:
    """What a fit depends on: size, circuit, the cells' conductance range and I-V, the DAC's v_read and R_PD.

    (Bits, levels and variation change only how the samples are drawn: a fit is kept across them. The
    access transistor of 1T-1R cells is not part of it either: a preset's 1R fit is applied to its 1T-1R
    cells. Measured on rxnn-spintronic 64x64 tiles with 1T-1R cells, the ROWSUM column currents against
    the EXACT DAC load: 6.2e-4 of the largest current with kappa = 1, 4.9e-4 with the 1R fit's 0.859
    (median of 6 random tiles, at V_G = 1.0 V and 1.8 V alike, 2026-12-03; tested in
    ``tests/fcm/test_1t1r_fcm.py``).)"""
    d = spec.to_dict()
    return {"rows": d["rows"], "cols": d["cols"], "circuit": d["circuit"],
            "device": {k: d["device"][k] for k in ("g_min", "g_max", "sinh_b")},
            "dac": {k: d["dac"][k] for k in ("v_read", "r_pd")}}


class OtherCircuitError(ValueError):
    """A saved fit made for another circuit than the spec it is asked for (``load_fit``)."""


def load_fit(path: str | Path, spec: CrossbarSpec, dac_load: DacLoad | str = DacLoad.ROWSUM) -> FCMOptions:
    """FCMOptions carrying the fitted parameters of a saved fit, for ``spec``.

    ValueError when the fit was made for another circuit (``fit_circuit``
    differs): a load factor fitted on one circuit says nothing about another.
    """
    if not isinstance(spec, CrossbarSpec):
        raise ValueError(f"spec must be a CrossbarSpec, got {type(spec).__name__}")
    d = json.loads(Path(path).read_text())
    if not isinstance(d, dict) or not isinstance(d.get("spec"), dict) or not isinstance(d.get("options"), dict) \
            or not {"load_factor", "sinh_gamma", "mapping", "x_max"} <= set(d["options"]):
        raise ValueError(f"{Path(path).name} is not a fit saved by save_fit (needs 'spec' and 'options' with "
                         f"load_factor, sinh_gamma, mapping, x_max)")
    mine, theirs = fit_circuit(spec), fit_circuit(CrossbarSpec.from_dict(d["spec"]))
    if mine != theirs:
        diff = sorted(k for k in mine if mine[k] != theirs[k])
        raise OtherCircuitError(f"the fit in {Path(path).name} was made for another circuit than spec "
                         f"{spec.name or 'custom'!r} (differs in {', '.join(diff)}: fit {[theirs[k] for k in diff]}, "
                         f"spec {[mine[k] for k in diff]}); refit with python -m xbarlab.verify.fitting")
    o = d["options"]
    return FCMOptions(dac_load=dac_load, load_factor=o["load_factor"], sinh_gamma=o["sinh_gamma"],
                      mapping=o["mapping"], x_max=o["x_max"])


def fitted_options(spec: CrossbarSpec, dac_load: DacLoad | str = DacLoad.ROWSUM) -> FCMOptions | None:
    """The saved fit of a named preset at its size (``fit_path``) when it was made for this very
    circuit, else None (no fit applies: a spec named like a preset with another circuit gets none).
    A fit file that cannot be read as a fit raises ValueError naming it: it is never taken for no fit."""
    path = fit_path(spec)
    if not spec.name or not path.exists():
        return None
    try:
        return load_fit(path, spec, dac_load)
    except OtherCircuitError:
        return None
    except json.JSONDecodeError as exc:
        raise ValueError(f"saved fit {path} is not JSON ({exc}); restore it from git or refit it "
                         "with python -m xbarlab.verify.fitting") from None


def main(argv=None) -> int:
    """``python -m xbarlab.verify.fitting --preset reram --size 16 [--sinh-b 3]``: fit and save."""
    import argparse

    from ..device import DeviceParams
    from ..spec import load_preset

    p = argparse.ArgumentParser(description="Fit the FCM's closed-form parameters against ngspice and save them.")
    p.add_argument("--preset", default="spintronic")
    p.add_argument("--size", type=int, default=16, help="rows = cols of the crossbar")
    p.add_argument("--sinh-b", type=float, default=None, help="override the device's sinh b (1/V)")
    p.add_argument("--train", type=int, default=20)
    p.add_argument("--test", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=None, help="JSON path (default: xbarlab/presets/fitted/<preset>_<size>.json)")
    args = p.parse_args(argv)
    try:
        spec = load_preset(args.preset, rows=args.size)
        if args.sinh_b is not None:
            d = spec.device.to_dict()
            d["sinh_b"] = args.sinh_b
            spec = spec.replace(device=DeviceParams.from_dict(d))
        for name in ("train", "test", "workers"):
            _count(f"--{name}", getattr(args, name))
    except ValueError as exc:
        p.error(str(exc))
    try:
        result = fit(spec, args.train, args.test, args.seed, workers=args.workers)
    except ValueError as exc:  # e.g. a rank-deficient fit: one line, no traceback
        p.exit(1, f"{p.prog}: error: {exc}\n")
    path = save_fit(result, args.out or fit_path(spec))
    print(json.dumps(result["fit"], indent=2))
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
