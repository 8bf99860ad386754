"""Characterization scripts: the RxNN paper's sensitivity studies (Fig. 2, Fig. 3) and the FCM studies, run from ngspice and the exact solver."""
