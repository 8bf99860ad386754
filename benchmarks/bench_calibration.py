"""What converter-range calibration costs in the Fig. 12(a) experiment, and per setting.

    python benchmarks/bench_calibration.py [--networks lenet,convnet] [--sizes 64]

Runs ``dnn_eval.experiments.fig12_accuracy.run`` on digits for the given
networks and sizes (every setting of the decomposition, hardware seed 0, the
CLI's calibrated ranges) and prints its wall time, the time spent in
``dnn_eval.calibration.calibrate_network`` (each setting calibrates its own
hardware instance), that time per call, and the accuracies (which a faster
calibration must leave unchanged). Run it at two commits to compare them;
alternate the runs so that both see the same machine load.
"""

from __future__ import annotations

import argparse
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--networks", default="lenet,convnet")
    p.add_argument("--sizes", default="64")
    args = p.parse_args(argv)
    import dnn_eval.calibration as cal
    from dnn_eval.experiments import fig12_accuracy

    spent, calls = [0.0], [0]
    orig = cal.calibrate_network

    def timed(*a, **k):  # (evaluate imports calibrate_network from the module at each call)
        t = time.perf_counter()
        try:
            return orig(*a, **k)
        finally:
            spent[0] += time.perf_counter() - t
            calls[0] += 1

    cal.calibrate_network = timed
    nets, sizes = tuple(args.networks.split(",")), tuple(int(s) for s in args.sizes.split(","))
    t = time.perf_counter()
    try:
        df = fig12_accuracy.run(datasets=("digits",), networks=nets, sizes=sizes)
    finally:
        cal.calibrate_network = orig
    total = time.perf_counter() - t
    cols = [c for c in df.columns if c.startswith("accuracy_")]
    print(df[["network", "xbar", *cols]].to_string(index=False))
    print(f"fig12_accuracy on digits, networks {','.join(nets)}, sizes {args.sizes}: total {total:.1f} s, "
          f"calibrate_network {spent[0]:.1f} s in {calls[0]} calls ({spent[0] / max(calls[0], 1):.2f} s per call)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
