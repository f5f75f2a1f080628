"""The DataLoader: a dataset cut into (shuffled) batches, in this process or in worker
processes. PyTorch's names (torch.utils.data.dataloader).

Layer: nn/optim/utils (top). Imports edugrad.tensor, edugrad.shape and edugrad.factories, and
the standard library's multiprocessing; never NumPy.

How a batch is made: a batch sampler gives the indices of the next batch (by default
`BatchSampler(SequentialSampler or RandomSampler, batch_size, drop_last)`), the loader fetches
each sample and `collate`s them: tensors are stacked along a new first dim, numbers become a
tensor (its dtype promoted over the batch, as in PyTorch), tuples and dicts are collated field
by field. A TensorDataset skips the per-sample work: its batch is one indexing of each whole
tensor (`t[order[start:stop]]`, or a slice `t[start:stop]` when not shuffled).

Workers (num_workers > 0): real processes (multiprocessing, the platform's default start
method; with "spawn" the dataset and collate_fn must pickle). Batch i goes to worker
i % num_workers, each worker keeps up to prefetch_factor batches in flight, and the loader
hands the batches out in batch order: the same batches in the same order as num_workers=0.
A worker fetches and collates on the host; the tensors it makes are sent back as NumPy arrays
(with their dtype) and made into tensors again here, on the device the worker used ("cpu",
the only sensible one for a worker: move batches to the GPU in the training loop). Each worker
seeds edugrad's and Python's generators with base_seed + worker id (base_seed is drawn anew
each epoch), calls worker_init_fn(worker_id), and answers get_worker_info().
pin_memory is accepted and does nothing: host buffers are NumPy arrays, there is no pinned
memory to ask for.
"""

from __future__ import annotations

import multiprocessing
import queue
import random
import traceback

from edugrad import dtypes
from edugrad.backend import manual_seed
from edugrad.factories import randint, tensor
from edugrad.shape import stack
from edugrad.tensor import Tensor
from edugrad.utils.data.dataset import IterableDataset, TensorDataset
from edugrad.utils.data.sampler import (
    BatchSampler, RandomSampler, SequentialSampler, check_generator,
)


def collate(samples: list):
    """A list of samples -> one batch, as PyTorch's default_collate makes it.

    Tensors are stacked (a new first dim); numbers, NumPy scalars and NumPy arrays become one
    tensor. The dtype promotes over the whole batch, never just the first sample's: `[1, 2.5]`
    is float32 and `[True, 2]` int64, as `torch.tensor([...])` gives, and tensors of mixed
    dtypes stack as torch.stack promotes them. One exception, PyTorch's too: a batch whose
    first sample is a Python float is float64. Tuples, lists and dicts are collated field by
    field; anything else (strings) stays a list.
    """
    first = samples[0]
    if isinstance(first, Tensor):
        _check_all(samples, Tensor, "a tensor")
        return stack(samples)  # promotes mixed dtypes
    if _is_numpy(first) and first.ndim > 0:
        return stack([tensor(sample) for sample in samples])  # as torch.as_tensor each, stack
    if isinstance(first, (bool, int, float)) or _is_numpy(first):
        each = [(_dtype_of(sample, i), 1) for i, sample in enumerate(samples)]  # as tensors
        # a float first: float64, default_collate's choice; else what torch.tensor would give
        dtype = dtypes.float64 if type(first) is float else dtypes.result_type(*each)
        return tensor(samples, dtype=dtype)
    if isinstance(first, dict):
        return {key: collate([sample[key] for sample in samples]) for key in first}
    if isinstance(first, (tuple, list)):
        if any(len(sample) != len(first) for sample in samples):
            raise RuntimeError("collate: each sample in a batch must have the same number of "
                               f"fields, got {sorted({len(sample) for sample in samples})}")
        fields = [collate(list(field)) for field in zip(*samples)]
        return fields if isinstance(first, list) else tuple(fields)
    return list(samples)


def _is_numpy(sample) -> bool:
    """A NumPy array or scalar, recognised without importing NumPy (this layer never does)."""
    return type(sample).__module__ == "numpy" and hasattr(sample, "dtype")


def _dtype_of(sample, index: int) -> dtypes.DType:
    """The dtype torch.tensor gives one number: its own for NumPy, bool/int64/float32 else."""
    if _is_numpy(sample) and sample.ndim == 0:
        return dtypes.from_name(sample.dtype.name)
    if isinstance(sample, (bool, int, float)):
        return dtypes.of_python_scalar(sample)
    raise TypeError(f"collate: sample {index} is a {type(sample).__name__}, but sample 0 is a "
                    "number: a batch must be numbers throughout")


def _check_all(samples: list, kind: type, name: str) -> None:
    for index, sample in enumerate(samples):
        if not isinstance(sample, kind):
            raise TypeError(f"collate: sample {index} is a {type(sample).__name__}, but sample "
                            f"0 is {name}: a batch must be {name} throughout")


default_collate = collate  # PyTorch's name


# ---- inside a worker process ---------------------------------------------------------------------
class WorkerInfo:
    """What get_worker_info() tells code running in a worker."""

    def __init__(self, id: int, num_workers: int, seed: int, dataset) -> None:  # noqa: A002
        self.id, self.num_workers, self.seed, self.dataset = id, num_workers, seed, dataset

    def __repr__(self) -> str:
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed})"


_worker_info: list = [None]


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker process: its WorkerInfo; in the main process: None."""
    return _worker_info[0]


class _HostTensor:
    """A tensor on its way out of a worker: its values as a NumPy array, and its dtype."""

    def __init__(self, t: Tensor) -> None:
        self.values, self.dtype, self.device = t.detach().numpy(), t.dtype.name, str(t.device)

    def rebuild(self) -> Tensor:
        return tensor(self.values, dtype=self.dtype, device=self.device)


def _map_tensors(batch, convert):
    """The batch with every tensor (or _HostTensor) in it replaced by convert(it)."""
    if isinstance(batch, (Tensor, _HostTensor)):
        return convert(batch)
    if isinstance(batch, dict):
        return {key: _map_tensors(value, convert) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        items = [_map_tensors(item, convert) for item in batch]
        if isinstance(batch, list):
            return items
        return type(batch)(*items) if hasattr(batch, "_fields") else tuple(items)  # namedtuple
    return batch


DONE = "done"  # the last message of a worker streaming an IterableDataset


def _worker_loop(dataset, collate_fn, tasks, results, worker_id, num_workers, seed,
                 worker_init_fn, job) -> None:
    """A worker process: seed, init, then the job. job ("map", auto_collation): answer
    (key, indices) tasks until None. job ("iterable", batch_size, drop_last): iterate the
    dataset, send every batch, then DONE."""
    _worker_info[0] = WorkerInfo(worker_id, num_workers, seed, dataset)
    manual_seed(seed)
    random.seed(seed)
    try:
        if worker_init_fn is not None:
            worker_init_fn(worker_id)
        if job[0] == "iterable":
            _stream(dataset, collate_fn, results, worker_id, *job[1:])
            return
        while True:
            task = tasks.get()
            if task is None:
                return
            key, indices = task
            try:
                samples = [dataset[i] for i in indices] if job[1] else dataset[indices]
                results.put((key, _map_tensors(collate_fn(samples), _HostTensor), None))
            except Exception:  # sent back, raised in the main process with the worker's trace
                results.put((key, None, traceback.format_exc()))
    except Exception:
        results.put(((None, worker_id), None, traceback.format_exc()))


def _stream(dataset, collate_fn, results, worker_id, batch_size, drop_last) -> None:
    count, batch = 0, []

    def send(samples):
        results.put(((worker_id, count), _map_tensors(collate_fn(samples), _HostTensor), None))

    try:
        for sample in dataset:
            if batch_size is None:
                send(sample)
                count += 1
                continue
            batch.append(sample)
            if len(batch) == batch_size:
                send(batch)
                count, batch = count + 1, []
        if batch and not drop_last:
            send(batch)
            count += 1
    except Exception:
        results.put(((worker_id, count), None, traceback.format_exc()))
        return
    results.put(((worker_id, count), DONE, None))


class _Workers:
    """num_workers processes, their task queues and the one result queue they answer on."""

    def __init__(self, loader: "DataLoader", job, base_seed: int) -> None:
        context = multiprocessing.get_context(loader.multiprocessing_context)
        count = loader.num_workers
        self.results = context.Queue()
        self.tasks = [context.Queue() for _ in range(count)]
        self.processes = [
            context.Process(target=_worker_loop, daemon=True, args=(
                loader.dataset, loader.collate_fn, self.tasks[w], self.results, w, count,
                base_seed + w, loader.worker_init_fn, job))
            for w in range(count)]
        for process in self.processes:
            process.start()

    def get(self):
        """The next (key, batch) from any worker; a worker's error is raised here."""
        while True:
            try:
                key, batch, error = self.results.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in self.processes if not p.is_alive() and p.exitcode != 0]
                if dead:
                    raise RuntimeError(f"DataLoader worker (pid {dead[0].pid}) exited "
                                       f"unexpectedly with exit code {dead[0].exitcode}")
                continue
            if error is not None:
                raise RuntimeError(f"DataLoader: a worker raised an exception (batch {key}):"
                                   f"\n{error}")
            return key, batch

    def stop(self) -> None:
        for tasks in self.tasks:
            tasks.put(None)
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()


def _rebuild(batch):
    return _map_tensors(batch, _HostTensor.rebuild)


def _convert(sample):
    """batch_size=None without a collate_fn: NumPy arrays become tensors, the rest stays."""
    if type(sample).__module__ == "numpy" and hasattr(sample, "dtype"):
        return tensor(sample)
    if isinstance(sample, dict):
        return {key: _convert(value) for key, value in sample.items()}
    if isinstance(sample, (list, tuple)) and not hasattr(sample, "_fields"):
        return type(sample)(_convert(item) for item in sample)
    return sample


class DataLoader:
    """Iterate a dataset in batches, in this process or in num_workers worker processes.

    >>> loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=0)
    >>> for xb, yb in loader:
    ...     loss = loss_fn(model(xb), yb)

    `generator`: an edugrad.Generator, an int seed or a random.Random for the shuffle (and the
    workers' base seed); None draws from edugrad's global stream (edugrad.manual_seed repeats
    it). `timeout`, `pin_memory` and `pin_memory_device` are accepted for PyTorch's sake.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler=None, batch_sampler=None, num_workers: int = 0, collate_fn=None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False,
                 pin_memory_device: str = "") -> None:
        if batch_size is not None and (not isinstance(batch_size, int)
                                       or isinstance(batch_size, bool) or batch_size < 1):
            raise ValueError(f"DataLoader: batch_size must be a positive int or None, got "
                             f"{batch_size!r}")
        self._check_workers(num_workers, prefetch_factor, persistent_workers)
        self.generator = check_generator("DataLoader", generator)
        self.dataset, self.num_workers = dataset, num_workers
        self.prefetch_factor = 2 if num_workers and prefetch_factor is None else prefetch_factor
        self.persistent_workers, self.pin_memory = persistent_workers, pin_memory
        self.timeout = timeout
        self.worker_init_fn, self.multiprocessing_context = worker_init_fn, multiprocessing_context
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle not in (None, False) or sampler is not None or batch_sampler is not None:
                raise ValueError("DataLoader: an IterableDataset takes no shuffle, sampler or "
                                 "batch_sampler (it gives its samples in its own order)")
        elif sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                                 "batch_size, shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is "
                             "mutually exclusive with drop_last")
        if sampler is None and not self._iterable:
            sampler = RandomSampler(dataset, generator=self.generator) if shuffle \
                else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size, self.drop_last, self.shuffle = batch_size, drop_last, bool(shuffle)
        self.sampler, self.batch_sampler = sampler, batch_sampler
        self._auto_collation = batch_sampler is not None
        self.collate_fn = collate_fn or (collate if batch_size is not None
                                         or batch_sampler is not None else _convert)
        self._workers = None  # persistent workers, kept between epochs

    @staticmethod
    def _check_workers(num_workers, prefetch_factor, persistent_workers) -> None:
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative int, got "
                             f"{num_workers!r}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("DataLoader: prefetch_factor option could only be specified in "
                             "multiprocessing, let num_workers > 0 to enable it")
        if prefetch_factor is not None and prefetch_factor < 1:
            raise ValueError(f"DataLoader: prefetch_factor must be >= 1, got {prefetch_factor}")
        if persistent_workers and num_workers == 0:
            raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")

    def __len__(self) -> int:
        """The number of batches in one epoch."""
        if self._iterable:
            count = len(self.dataset)  # a TypeError if the stream has no length, as in torch
            if self.batch_size is None:
                return count
            return count // self.batch_size if self.drop_last else -(-count // self.batch_size)
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def __iter__(self):
        # the workers' base seed is drawn at every epoch, by every loader, workers or not (as
        # PyTorch does): the shuffle then comes from the same place in the generator's stream,
        # so num_workers=N gives the batches num_workers=0 gives
        base_seed = self._base_seed()
        if self.num_workers == 0:
            return self._in_this_process()
        if self._iterable:
            return self._from_streaming_workers(base_seed)
        return self._from_workers(base_seed)

    # ---- num_workers=0 ------------------------------------------------------------------------
    def _in_this_process(self):
        if self._iterable:
            yield from self._batches_of_stream()
            return
        if not self._auto_collation:
            for index in self.sampler:
                yield self.collate_fn(self.dataset[index])
            return
        fast = (type(self.dataset) is TensorDataset and self.collate_fn is collate
                and type(self.batch_sampler) is BatchSampler)
        if not fast:
            for indices in self.batch_sampler:
                yield self.collate_fn([self.dataset[i] for i in indices])
            return
        yield from self._tensor_batches()

    def _tensor_batches(self):
        """TensorDataset: one indexing of each whole tensor per batch, not a stack of rows."""
        tensors, size = self.dataset.tensors, self.batch_size
        in_order = type(self.sampler) is SequentialSampler
        order = None if in_order else list(self.sampler)
        count = len(self.dataset) if in_order else len(order)
        stop = count - count % size if self.drop_last else count
        if not in_order:  # the order goes to each device once per epoch
            orders = {t.device: tensor(order, dtype=dtypes.int64, device=t.device)
                      for t in tensors}
        for start in range(0, stop, size):
            end = min(start + size, count)
            if in_order:
                yield tuple(t[start:end] for t in tensors)
            else:  # one gather per tensor, not batch_size slices and a stack
                yield tuple(t[orders[t.device][start:end]] for t in tensors)

    def _batches_of_stream(self):
        batch = []
        for sample in self.dataset:
            if self.batch_size is None:
                yield self.collate_fn(sample)
                continue
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self.collate_fn(batch)
                batch = []
        if batch and not self.drop_last:
            yield self.collate_fn(batch)

    # ---- worker processes ---------------------------------------------------------------------
    def _base_seed(self) -> int:
        if self.generator is None:
            return int(randint(0, 2 ** 62, ()).item())
        if isinstance(self.generator, random.Random):
            return self.generator.randrange(2 ** 62)
        return int(randint(0, 2 ** 62, (), generator=self.generator).item())

    def _from_workers(self, base_seed: int):
        """Map-style: batch i to worker i % num_workers, prefetch_factor in flight per worker,
        handed out in batch order."""
        workers = self._workers or _Workers(self, ("map", self._auto_collation), base_seed)
        if self.persistent_workers:
            self._workers = workers
        epoch = object()  # keys of this epoch: a persistent pool may still answer the last one
        source = iter(self.batch_sampler if self._auto_collation else self.sampler)
        sent, handed, waiting = 0, 0, {}

        def send() -> bool:
            nonlocal sent
            indices = next(source, None)
            if indices is None:
                return False
            workers.tasks[sent % self.num_workers].put(((id(epoch), sent), indices))
            sent += 1
            return True

        try:
            for _ in range(self.prefetch_factor * self.num_workers):
                if not send():
                    break
            while handed < sent:
                while (id(epoch), handed) not in waiting:
                    key, batch = workers.get()
                    waiting[key] = batch
                batch = waiting.pop((id(epoch), handed))
                handed += 1
                send()
                yield _rebuild(batch)
        finally:
            if not self.persistent_workers:
                workers.stop()

    def _from_streaming_workers(self, base_seed: int):
        """IterableDataset: every worker iterates its copy; batches round-robin over the
        workers, skipping those that have finished (PyTorch's order)."""
        workers = _Workers(self, ("iterable", self.batch_size, self.drop_last), base_seed)
        active, counts, waiting = list(range(self.num_workers)), [0] * self.num_workers, {}
        try:
            while active:
                for worker in list(active):
                    key = (worker, counts[worker])
                    while key not in waiting:
                        got, batch = workers.get()
                        waiting[got] = batch
                    batch = waiting.pop(key)
                    if isinstance(batch, str) and batch == DONE:
                        active.remove(worker)
                        continue
                    counts[worker] += 1
                    yield _rebuild(batch)
        finally:
            workers.stop()

    def __del__(self) -> None:  # persistent workers end with their loader
        workers = getattr(self, "_workers", None)
        if workers is not None:
            try:
                workers.stop()
            except Exception:  # at interpreter exit the queues may already be gone
                pass
