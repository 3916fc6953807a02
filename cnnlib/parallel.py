"""Data parallelism: one network trained (and run) on several CPU cores at once.

numpy runs each operation on one core, and the reference network's arrays are too small for a
multi-threaded BLAS to help. Python threads do not help either: they take turns holding the
interpreter lock between numpy calls, and this network makes thousands of short calls per second
(the README's Speed section has the measurements). So, like PyTorch's DistributedDataParallel,
cnnlib uses *processes*: the main process
and ``workers - 1`` worker processes each hold a copy of the network and take one share of every
batch.

One training step, ``parallel.forward_backward(x, y)`` on a batch of N examples:

1. the main process sends each worker the current weights (one flat float32 vector) and its
   share of the batch, x[lo:hi] and y[lo:hi];
2. every process runs forward, loss and backward on its own share, side by side;
3. the main process adds the gradients up, weighted by the share sizes n_w: the batch's mean loss
   is L = sum_w (n_w / N) L_w, so dL/dtheta = sum_w (n_w / N) dL_w/dtheta;
4. the optimizer then updates the main network exactly as in one process.

That is the step one process takes, up to float rounding (the sums run in a different order), so
a seeded run with a given number of workers reproduces exactly, and runs with different numbers
of workers agree to about 1e-6 per step. What differs, as in PyTorch: batch norm normalizes each
share by that share's own statistics, and its running averages are the main process's (its share
only); each worker's dropout layers draw from their own generators. So with batch norm the numbers
of workers give really different runs.

    with DataParallel(net, workers=2, seed=0) as parallel:
        loss = parallel.forward_backward(x, y)      # fills net's grads for the whole batch
        optimizer.step(net)
        classes = parallel.predict(x_test)          # the test set split over the processes

Interrupting a call (Ctrl-C, or the notebook's interrupt) closes the workers, since a message may
be left half-sent in a pipe; a ``Trainer`` starts new ones at its next step.

What it trades away: the weights travel to every worker at every step (28 kB for the reference
network; a step's exchange takes about 0.2 ms), which only pays off when a share takes a
millisecond or more; the workers take about 0.3 s to start (``spawn``: a fresh interpreter, safe
beside the training dashboard's thread), and they rebuild the network from ``cnnlib.serialization``'
registry, so a layer type registered in a notebook cell is unknown to them (register it in a
module they import); a worker starts by importing the script that started it, so a script needs
the usual ``if __name__ == "__main__":`` around its training code; one machine only.
"""

import multiprocessing
import os
import signal
import traceback
import weakref

import numpy as np

from .dropout import Dropout
from . import serialization
from .serialization import architecture, from_architecture
from .network import Sequential, forward_backward
from .ops import ops

__all__ = ["DataParallel", "WorkerError", "shares"]

# Each worker is one single-threaded process: a multi-threaded BLAS in every process would put
# more threads than cores on the machine. The variables are read when numpy starts in the worker.
_ONE_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                      "MKL_NUM_THREADS")}


class WorkerError(RuntimeError):
    """A worker process failed (its traceback is in the message) or died."""


def shares(n, parts):
    """Split range(n) into ``parts`` contiguous shares as even as possible: [(lo, hi), ...].

    The first ``n % parts`` shares get one example more; shares may be empty when n < parts.
    """
    base, extra = divmod(n, parts)
    bounds, lo = [], 0
    for part in range(parts):
        hi = lo + base + (1 if part < extra else 0)
        bounds.append((lo, hi))
        lo = hi
    return bounds


def _state_arrays(net):
    """The arrays every copy of ``net`` must agree on: parameters, then buffers (fixed order)."""
    return [param for _, param, _ in net.parameters()] + list(serialization.buffers(net).values())


def _flatten(arrays, dtype):
    return np.concatenate([a.ravel() for a in arrays]).astype(dtype, copy=False)


def _unflatten(flat, arrays):
    """Copy consecutive pieces of ``flat`` into ``arrays``, in place."""
    offset = 0
    for a in arrays:
        a[...] = flat[offset:offset + a.size].reshape(a.shape)
        offset += a.size


# ------------------------------------------------------------------------------------ the worker

def _compute(net, task, x, y=None, batch_size=None):
    """What a process does with its share x: (n, ...).

    "train": forward, loss against the labels y: (n,), backward; returns the share's mean loss and
    leaves its gradient in net's grads. "predict" / "predict_proba": the network's answers,
    (n,) classes or (n, K) probabilities, computed ``batch_size`` examples at a time.
    """
    if task == "train":
        net.train()
        return forward_backward(net, x, y).loss
    if task == "predict":
        return net.predict(x, batch_size=batch_size)
    if task == "predict_proba":
        return net.predict_proba(x, batch_size=batch_size)
    raise ValueError(f"unknown task {task!r}")


def _serve(conn, specs, params, buffers, seed, rank):
    """A worker's whole life: rebuild the network, say "ready", then answer requests until told
    to stop.

    Request: (task, flat state, x, y, batch_size), as in ``_compute`` -> answer ("ok", result,
    flat grads or None) or ("error", traceback text, None). None ends the worker, and so does a
    closed pipe.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    net = None
    try:
        net = from_architecture(specs, params, buffers)
        for index, layer in enumerate(net):
            if isinstance(layer, Dropout):        # masks of their own, not the main process's
                layer.rng = np.random.default_rng([seed, rank, index])
        state = _state_arrays(net)
        grads = [grad for _, _, grad in net.parameters()]
        answer = ("ready", None, None)
    except Exception:
        answer = ("error", traceback.format_exc(), None)
    while True:
        try:
            conn.send(answer)
            if net is None:                        # it could not build the network: said why
                return
            request = conn.recv()
        except (EOFError, OSError):                # the main process closed the pipe
            return
        if request is None:
            return
        try:
            task, flat_state, x, y, batch_size = request
            _unflatten(flat_state, state)
            result = _compute(net, task, x, y, batch_size)
            flat_grads = _flatten(grads, flat_state.dtype) if task == "train" else None
            answer = ("ok", result, flat_grads)
        except Exception:                          # reported, then raised by the main process
            answer = ("error", traceback.format_exc(), None)


def _stop(processes, connections):
    """Tell every worker to stop and wait for it (at most a few seconds, then terminate).

    Our ends of the pipes close before the wait: a worker still sending an answer nobody will
    read then gets a broken pipe and returns, instead of blocking on a full pipe.
    """
    for conn in connections:
        try:
            conn.send(None)
        except (OSError, ValueError):              # already gone
            pass
        conn.close()
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.terminate()
            process.join()


# ------------------------------------------------------------------------------- the main side

class DataParallel:
    """Run ``net`` on ``workers`` processes: this one and ``workers - 1`` helpers.

    net: a Sequential whose layers ``cnnlib.serialization`` can save (every built-in layer).
    workers: processes in all (>= 1; 1 means no helper processes, plain single-process calls).
    seed: seeds the workers' dropout generators (worker w's layer i uses
    ``default_rng([seed, w, i])``); None draws one from the operating system.

    The network stays yours: ``forward_backward`` fills its grads, your optimizer updates it, and
    every call sends its current weights (and batch norm statistics) to the workers first, so
    changing the network between calls is fine. Use it as a context manager, or call ``close()``;
    otherwise the workers stop when this object is garbage-collected or Python exits. The
    constructor returns once every worker has built its copy of the network (or raises
    ``WorkerError`` with the worker's traceback).
    """

    def __init__(self, net, workers=2, seed=None):
        if not isinstance(net, Sequential):
            raise ValueError(f"DataParallel takes a cnnlib Sequential; got {type(net).__name__}")
        if not isinstance(workers, (int, np.integer)) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
        self.net, self.workers = net, int(workers)
        self._state = _state_arrays(net)
        self._grads = [grad for _, _, grad in net.parameters()]
        self._dtype = np.result_type(*self._state) if self._state else np.float32
        # The main process's share of the last step: its size, forward and backward seconds.
        self.local_examples, self.forward_seconds, self.backward_seconds = 0, 0.0, 0.0
        self._processes, self._connections = [], []
        self._finalizer = weakref.finalize(self, _stop, self._processes, self._connections)
        if self.workers == 1:
            return
        if ops.plugged():
            # The workers would run the default operations while this process runs the plugged
            # ones: the shares of one batch would not be computed by the same code.
            raise ValueError(
                f"DataParallel's worker processes run cnnlib's own operations, but "
                f"{', '.join(ops.plugged())} are plugged in here; train with workers=1, or call "
                f"cnnlib.ops.ops.unplug() first")
        seed = int(np.random.SeedSequence(seed).entropy) if seed is None else seed
        specs = architecture(net)
        params = {name: param.copy() for name, param, _ in net.parameters()}
        buffers = {name: value.copy() for name, value in serialization.buffers(net).items()}
        context = multiprocessing.get_context("spawn")
        saved = {name: os.environ.get(name) for name in _ONE_THREAD}
        os.environ.update(_ONE_THREAD)             # inherited by the workers when they start
        try:
            for rank in range(1, self.workers):
                ours, theirs = context.Pipe()
                process = context.Process(target=_serve, name=f"cnnlib-worker-{rank}",
                                          args=(theirs, specs, params, buffers, seed, rank),
                                          daemon=True)
                process.start()
                theirs.close()
                self._processes.append(process)
                self._connections.append(ours)
        except BaseException:
            self.close()
            raise
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        try:
            for rank, conn in enumerate(self._connections, start=1):
                status, text, _ = self._receive(rank, conn, starting=True)
                if status == "error":
                    raise WorkerError(f"worker {rank} could not build the network:\n{text}")
        except BaseException:
            self.close()
            raise

    def __repr__(self):
        return f"DataParallel(workers={self.workers})"

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def closed(self):
        """True once the workers were stopped (by ``close``, an interrupt or a dead worker)."""
        return not self._finalizer.alive

    def close(self):
        """Stop the worker processes (idempotent). The network itself is untouched."""
        self._finalizer()

    # ---- one request to every process

    def _scatter(self, task, x, y=None, batch_size=None):
        """Send each worker its share of x (and of the labels y when training), compute share 0
        here, read every answer. x: (N, ...), y: (N,) or None.

        Returns the shares' bounds [(lo, hi), ...], this process's result and the workers'
        answers, in order. Any interruption mid-exchange (Ctrl-C) closes the workers: a pipe may
        then hold half a message or an answer nobody read, which the next call would take for
        its own.
        """
        if self.closed:
            raise RuntimeError("this DataParallel is closed; make a new one")
        bounds = shares(len(x), self.workers)
        flat_state = _flatten(self._state, self._dtype)
        local_error = None
        try:
            for rank, (conn, (lo, hi)) in enumerate(zip(self._connections, bounds[1:]), start=1):
                share_y = None if y is None else y[lo:hi]
                try:
                    conn.send((task, flat_state, x[lo:hi], share_y, batch_size))
                except OSError as error:           # a broken pipe: the worker is gone
                    self._died(rank, error)
            lo, hi = bounds[0]
            try:
                local = self._local(task, x[lo:hi], None if y is None else y[lo:hi], batch_size)
            except Exception as error:             # still read every answer: pipes stay in step
                local_error = error
            answers = [self._receive(rank, conn)
                       for rank, conn in enumerate(self._connections, start=1)]
        except BaseException:
            self.close()
            raise
        if local_error is not None:
            raise local_error
        for rank, (status, result, _) in enumerate(answers, start=1):
            if status == "error":
                raise WorkerError(f"worker {rank} failed:\n{result}")
        return bounds, local, answers

    def _receive(self, rank, conn, starting=False):
        try:
            return conn.recv()
        except (EOFError, OSError) as error:
            self._died(rank, error, starting)

    def _died(self, rank, error, starting=False):
        self.close()
        if starting:    # before the worker could run: most often a script without a main guard
            raise WorkerError(
                f"worker process {rank} died while starting ({error!r}; its own error is printed "
                "above). A worker starts by importing the script that started it: in a script, "
                "put the code that trains under `if __name__ == \"__main__\":`") from None
        raise WorkerError(f"worker process {rank} died ({error!r}); make a new DataParallel "
                          "(a Trainer makes one itself at its next step)") from None

    def _local(self, task, x, y=None, batch_size=None):
        """``_compute`` on this process's network; a training share is timed, forward and
        backward apart."""
        if task != "train":
            return _compute(self.net, task, x, batch_size=batch_size)
        self.net.train()
        loss, self.forward_seconds, self.backward_seconds = forward_backward(self.net, x, y)
        self.local_examples = len(x)
        return loss

    # ---- the public calls

    def forward_backward(self, x, y):
        """Loss and gradients of the whole batch, computed in shares side by side.

        x: (N, ...) a batch the network takes; y: (N,) integer labels.
        Fills the network's grads with the gradient of the batch's mean softmax cross-entropy
        and returns that loss (float). The network is left in training mode. A batch smaller
        than ``workers`` (an epoch's last, say) is computed here alone. ``local_examples``,
        ``forward_seconds`` and ``backward_seconds`` then describe this process's share.
        """
        if len(x) != len(y):
            raise ValueError(f"x and y differ in length: {len(x)} images, {len(y)} labels")
        if self.workers == 1 or len(x) < self.workers:
            return float(self._local("train", x, y))
        bounds, loss, answers = self._scatter("train", x, y)
        n = len(x)
        weight = (bounds[0][1] - bounds[0][0]) / n
        total = weight * loss
        for grad in self._grads:
            grad *= weight
        for (lo, hi), (_, share_loss, flat_grads) in zip(bounds[1:], answers):
            weight = (hi - lo) / n
            total += weight * share_loss
            offset = 0
            for grad in self._grads:
                grad += weight * flat_grads[offset:offset + grad.size].reshape(grad.shape)
                offset += grad.size
        return float(total)

    def predict(self, x, batch_size=64):
        """``net.predict(x, batch_size)`` with x split over the processes: (N, ...) -> (N,)."""
        return self._predict("predict", x, batch_size)

    def predict_proba(self, x, batch_size=64):
        """``net.predict_proba(x, batch_size)`` with x split over the processes: (N, K)."""
        return self._predict("predict_proba", x, batch_size)

    def _predict(self, task, x, batch_size):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        if self.workers == 1 or len(x) < self.workers:
            return _compute(self.net, task, x, batch_size=batch_size)
        _, local, answers = self._scatter(task, x, batch_size=batch_size)
        return np.concatenate([local] + [result for _, result, _ in answers])
