"""dnn_eval: accuracy, re-training and energy of PyTorch networks on resistive crossbars.

The only package of xbarlab that imports torch. Linear and Conv2d layers run
through xbarlab's Fast Crossbar Model (``xbarlab.fcm.FCM``); see
``dnn_eval/README.md`` for the physical and numerical assumptions.
Modules: ``data`` (digits, MNIST IDX, CIFAR-10 binary), ``models``,
``train``, ``loading`` (safe .pt2 / state_dict loading), ``crossbar``,
``evaluate``, ``energy``, ``retrain``, ``plotting``, ``cli`` and
``experiments``.
"""
