"""Which training process this is: the variables accelerate and torchrun set, read in one place.

One process (``segzero train`` without a launcher) is rank 0 of 1. Under ``accelerate launch`` or ``torchrun``,
``WORLD_SIZE`` is the number of processes, ``RANK`` this process's global index and ``LOCAL_RANK`` its index on
this machine; files that one process must write (checkpoint-side logs, built models) are written by the main one.

>>> world_size(), rank(), is_main_process()   # outside a launcher
(1, 0, True)
"""

from __future__ import annotations

import os


def world_size() -> int:
    """Number of training processes (``WORLD_SIZE``; 1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """Global index of this process (``RANK``; 0 without a launcher)."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """Index of this process on its machine (``LOCAL_RANK``; 0 without a launcher)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """Whether this process writes the run's shared files (global rank 0)."""
    return rank() == 0
