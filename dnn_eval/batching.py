"""Mini-batch order of the training loops (TxSim, re-training): shuffled passes, the remainder dropped.

Each pass over the ``n`` training samples is a fresh permutation from the
run's ``torch.Generator``, cut into batches of ``batch``; the ``n % batch``
samples left at the end of a pass are not used in that pass (the next pass
starts a new permutation, so every sample is drawn in later passes: the
``drop_last=True`` of a ``DataLoader`` with ``shuffle=True``). A ``batch``
larger than ``n`` warns once and uses all ``n`` samples at every step.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import torch


def minibatches(n: int, batch: int, generator: torch.Generator, name: str = "train") -> Iterator[torch.Tensor]:
    """Endless index tensors of mini-batches over ``n`` samples (the module docstring's order)."""
    if batch > n:
        warnings.warn(f"batch {batch} is larger than the {name} split ({n} samples): every step uses all "
                      f"{n} samples", stacklevel=3)
    perm, pos = torch.randperm(n, generator=generator), 0
    while True:
        if pos + batch > n:
            perm, pos = torch.randperm(n, generator=generator), 0
        yield perm[pos:pos + batch]
        pos += batch
