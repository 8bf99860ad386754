"""Scripts that reproduce the RxNN paper's application-level figures on digits.

Each writes a CSV (tidy DataFrame) and a PNG drawn from that CSV into
``--out`` (default ``reports/``)::

    python -m dnn_eval.experiments.fig12_accuracy --out reports   # Fig. 12(a)
    python -m dnn_eval.experiments.fig12_energy --out reports     # Fig. 12(b), Fig. 13
    python -m dnn_eval.experiments.fig14_sensitivity --out reports
    python -m dnn_eval.experiments.fig15_retrain --out reports
    python -m dnn_eval.experiments.fig16_features --out reports
"""
