"""Train several independent runs at once, one per thread.

A transfer curve is dozens of small runs. One of them cannot keep even two CPU cores busy: its
operations are too small to split across threads (each split costs a synchronisation), so a
sweep that trains one run after another with all cores per operation wastes most of them. Here
W runs train side by side, each in its own thread with one intra-op thread, so W cores each work
on a whole run. PyTorch releases the GIL inside its operations, so the threads overlap. On CUDA
each thread launches on its own stream, so one run's kernels fill the gaps between another's.

Every run stays exactly what it would be alone: its own model, optimizer and random generator
(the caller seeds model construction under a lock), so results do not depend on which thread
ran what or in which order runs finish. Results are handed back in the calling thread, in the
order they finish, so the caller can store and report them without locks.

Not here: what a run is (`sweep`) or how a step trains (`train`).
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Iterator, Optional, Sequence, TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")

MAX_CUDA_STREAMS = 4  # runs in flight on one GPU


def default_concurrency(device: torch.device) -> int:
    """How many runs to train at once: one per CPU thread this process may use (at least 1),
    or a few per GPU."""
    if device.type == "cuda":
        return MAX_CUDA_STREAMS
    if device.type == "cpu":
        return max(1, torch.get_num_threads())
    return 1


@contextlib.contextmanager
def _stream_for(device: torch.device):
    """A stream of the thread's own on CUDA; nothing elsewhere."""
    if device.type == "cuda":
        stream = torch.cuda.Stream(device)
        with torch.cuda.stream(stream):
            yield
        stream.synchronize()  # the run's last kernels are done before its result is handed on
    else:
        yield


def run_concurrently(items: Sequence[T], work: Callable[[T], R], *, workers: int,
                     device: torch.device,
                     should_stop: Optional[Callable[[], bool]] = None) -> Iterator[tuple[T, R]]:
    """Yield (item, work(item)) for every item, `workers` at a time, as each one finishes.

    `work` must check `should_stop` itself to stop part-way; once it is true, items not started
    yet are skipped. An exception in one item stops the others from starting and is raised here.
    With workers <= 1 the items run one after another in the calling thread.
    """
    stop = should_stop or (lambda: False)
    if workers <= 1 or len(items) <= 1:
        for item in items:
            if stop():
                return
            yield item, work(item)
        return

    failed = threading.Event()
    cpu_threads = torch.get_num_threads()

    def guarded(item: T):
        if failed.is_set() or stop():
            return _SKIPPED
        torch.set_num_threads(1)
        with _stream_for(device):
            return work(item)

    if device.type == "cpu":
        torch.set_num_threads(1)  # each run uses one core; the threads use the rest
    pending: set[Future] = set()
    queue = list(reversed(items))
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run") as pool:
            futures: dict[Future, T] = {}
            while queue or pending:
                while queue and len(pending) < workers and not failed.is_set():
                    item = queue.pop()
                    future = pool.submit(guarded, item)
                    futures[future] = item
                    pending.add(future)
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    error = future.exception()
                    if error is not None:
                        failed.set()
                        raise error
                    result = future.result()
                    if result is not _SKIPPED:
                        yield futures.pop(future), result
    finally:
        failed.set()  # a consumer that stops iterating also stops new items from starting
        torch.set_num_threads(cpu_threads)


class _Skipped:
    def __repr__(self) -> str:
        return "<skipped>"


_SKIPPED = _Skipped()

