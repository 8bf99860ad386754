"""Scripts that reproduce the RxNN paper's application-level figures on digits and mnist5k.

Each writes a CSV (tidy DataFrame) and a PNG drawn from that CSV into
``--out`` (default ``reports/``); the hardware is the one preset,
``rxnn-spintronic`` (``--preset`` picks another), and the loss is
decomposed into the settings of ``settings.py``::

    python -m dnn_eval.experiments.fig12_accuracy --out reports     # Fig. 12(a), decomposed
    python -m dnn_eval.experiments.fig12_energy --out reports       # Fig. 12(b), Fig. 13
    python -m dnn_eval.experiments.fig14_sensitivity --out reports  # Fig. 14, decomposed
    python -m dnn_eval.experiments.fig15_retrain --out reports
    python -m dnn_eval.experiments.fig16_features --out reports     # Fig. 16 and its per-layer error
    python -m dnn_eval.experiments.verdicts --out reports           # the paper's statements, in reports/index.md
"""
