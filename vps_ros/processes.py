"""Worker processes: the one place vps_ros starts a pool of them. Dataset evaluation
(``metrics/sources.py``) spreads sequences over one, a fleet (``replay/executors.py``)
its drives.

Workers are spawned, never forked: a forked child inherits the parent's threads (torch's
intra-op pool, a DDS participant, a progress bar's monitor) in whatever state they were,
and a lock one of them held stays held for ever. A spawned worker imports what it needs
anew; what it is given travels pickled.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

CONTEXT = multiprocessing.get_context("spawn")


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes."""
    return ProcessPoolExecutor(workers, mp_context=CONTEXT)
