"""Verification of the FCM against the circuit: above ``xbarlab.fcm``, never loaded by ``import xbarlab``.

* ``reference``: the readable stage-by-stage FCM evaluator (the test oracle of the fast paths);
* ``spice_reference``: the same stages with each tile's currents solved by ngspice on the full circuit;
* ``fitting``: the FCM's fitted parameters (kappa, sinh gamma) against ngspice, with provenance;
* ``baseline``: the MNSIM-style constant-error model of the paper's Fig. 10;
* ``metrics``: the paper's per-column relative error and the % of full scale.
"""
