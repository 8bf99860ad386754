"""dnn_eval: accuracy, re-training and energy of PyTorch networks on resistive crossbars.

The only package of xbarlab that imports torch. Linear and Conv2d layers run
through xbarlab's Fast Crossbar Model (``xbarlab.fcm.FCM``); see
``dnn_eval/README.md`` for the physical and numerical assumptions.
Modules: ``data`` (digits, MNIST IDX, CIFAR-10 binary), ``models``,
``train``, ``loading`` (safe .pt2 / state_dict loading), ``layers``
(``CrossbarLinear``, ``CrossbarConv2d`` and its ``ConvGeometry``),
``im2col`` (patch gathering), ``conv_codes`` (a convolution's DAC codes
straight from the image, numba), ``autograd`` (the straight-through
function), ``convert`` (``to_crossbar``, ``program_all``,
``set_straight_through``), ``evaluate``, ``energy``, ``retrain``,
``plotting``, ``cli`` and ``experiments``.
"""

#: the preset dnn_eval loads unless told otherwise: the RxNN paper's setup
#: (``xbarlab/presets/rxnn-spintronic.json``, device variation sigma/mu 0.1), whose DAC load factor
#: fitted at 16x16, 32x32 and 64x64 (``xbarlab/presets/fitted/``) ``evaluate.default_options`` applies
DEFAULT_PRESET = "rxnn-spintronic"
