"""The Fast Crossbar Model (FCM) of the RxNN paper, section V.

``FCM.from_weights(W, spec, rng)`` programs W onto crossbar tiles and
``FCM.matmul(x)`` evaluates x @ W through DAC, G_non-ideal and ADC models.
See ``model.py`` for the stages and ``README.md`` in this folder for the
physical assumptions and the measured error bounds.
"""

from . import mapping
from .mapping import Mapping
from .model import FCM, DacLoad, FCMOptions

__all__ = ["FCM", "DacLoad", "FCMOptions", "Mapping"]
