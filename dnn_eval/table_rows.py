"""Rows that the text tables of ``dnn-eval`` (one run, ``cli``) and ``dnn-eval --instances N``
(``instances_cli``) share: what produced the numbers, from the JSON output's ``config``."""

from __future__ import annotations


def cell_line(config: dict) -> str:
    """The cell: ``1R``, or ``1T-1R, V_G 1.2 V``."""
    return "1R" if config.get("v_gate_v") is None else f"1T-1R, V_G {config['v_gate_v']:g} V"


def ranges_line(c: dict) -> str:
    """The DAC and ADC ranges and how they were set (``config["converter_ranges"]``)."""
    def one(r: dict) -> str:
        extra = {k: v for k, v in r.items() if k != "kind"}
        return r["kind"] + (" (" + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in extra.items()) + ")" if extra else "")
    how = (f"; calibrated on {c.get('calibration_samples', c.get('samples'))} training images"
           if c.get("calibration_split") else "")
    return f"DAC {one(c['dac'])}, ADC {one(c['adc'])}{how}"


def hardware_rows(config: dict) -> list[tuple[str, str]]:
    """The cell, sensing and converter-range rows, in the tables' order after the weight mapping."""
    return [("cell", cell_line(config)), ("sensing", config["sensing"]),
            ("converter ranges", ranges_line(config["converter_ranges"]))]
