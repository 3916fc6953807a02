"""How fast cnnlib trains and classifies, measured side by side with PyTorch in the same run.

    python -m cnnlib bench                    # training ex/s (batch 20, 64), inference img/s
    python -m cnnlib bench --threads 2        # BLAS and PyTorch both on 2 threads
    python -m cnnlib bench --cores 2          # PyTorch 2 threads, cnnlib 2 processes
    python -m cnnlib bench --recipe           # + wall-clock of the original recipe (2 epochs)

A training step is the whole thing: forward, softmax cross-entropy, backward, SGD momentum update,
on the reference network (``cnnlib.architectures.seed_net``) with random 24x24 float32 images. Inference
is ``predict`` on 10,000 images, 64 at a time (its default). When ``import torch`` works the
same network (same initial weights, same SGD settings, same number of threads) is timed too, in
alternating slices (cnnlib, PyTorch, PyTorch, cnnlib, ...) so that noise from a shared machine
hits both, and the ratios are printed. Timings on a busy machine vary from run to run: compare
ratios measured in one run, never absolute numbers from different runs.

``--cores N`` lets each library use N cores the way it does best: PyTorch splits every operation
over N threads; numpy cannot (its operations on these small arrays run on one core, and Python
threads wait on each other), so cnnlib runs N processes of one thread each that share every
batch (``cnnlib.parallel.DataParallel``) and split the images to classify.

What it trades away: one network and one input size; no GPU; no statistics beyond totals.
"""

from __future__ import annotations

import datetime
import inspect
import os
import platform
import time

import numpy as np

from . import __version__
from .architectures import build_model, seed_net
from .network import Sequential, forward_backward
from .optim import SGD

__all__ = ["set_threads", "machine_info", "CnnlibRunner", "TorchRunner", "compare",
           "format_table", "time_recipe", "main"]

IMAGE_SIZE = 24
POOL = 2000            # random training images the batches cycle through (more for larger batches)
INFERENCE_IMAGES = 10_000
# Sequential.predict's default batch size (64), used for both libraries.
INFERENCE_BATCH = inspect.signature(Sequential.predict).parameters["batch_size"].default
LR, MOMENTUM = 0.01, 0.9


# ------------------------------------------------------------------------------------ threads

_limits = None  # keeps threadpoolctl's limit in force for the rest of the process


def set_threads(threads):
    """Limit numpy's BLAS to ``threads`` threads; returns a sentence saying what was done.

    Needs the ``threadpoolctl`` package (``requirements-bench.txt``); without it the BLAS keeps
    its own setting (the OPENBLAS_NUM_THREADS environment variable, read when numpy starts).
    """
    global _limits
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        env = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
        return (f"threadpoolctl is not installed, so BLAS threads are not set "
                f"(OPENBLAS_NUM_THREADS={env})")
    _limits = threadpool_limits(limits=threads, user_api="blas")
    return f"{threads} (threadpoolctl)"


def _blas_description():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown BLAS (install threadpoolctl to see it)"
    blas = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    if not blas:
        return "no BLAS found by threadpoolctl"
    info = blas[0]
    return (f"{info.get('internal_api')} {info.get('version')} ({info.get('architecture')} "
            f"kernels), {info.get('num_threads')} thread(s)")


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info():
    """Lines describing the machine and the libraries, for the results table."""
    lines = [
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"machine: {_cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}",
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"BLAS: {_blas_description()}",
    ]
    if hasattr(os, "getloadavg"):
        lines.append("load average (1 min): {:.1f}".format(os.getloadavg()[0]))
    return lines


# ------------------------------------------------------------------------------------ runners

def _random_data(rng, n):
    """n random images (n, 1, 24, 24) float32 in [0, 1) and labels (n,) int64."""
    x = rng.random((n, 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    y = rng.integers(0, 10, size=n)
    return x, y


class CnnlibRunner:
    """Trains and runs a cnnlib reference network on fixed random data."""

    name = "cnnlib"

    def __init__(self, net, x, y, workers=1):
        self.net, self.x, self.y = net, x, y
        self.optimizer = SGD(LR, momentum=MOMENTUM)
        self._position = 0
        self.parallel = None
        if workers > 1:
            from .parallel import DataParallel
            self.parallel = DataParallel(net, workers, seed=0)

    def train(self, batch_size, seconds):
        """Train for about ``seconds``; returns (examples trained, seconds taken)."""
        net, optimizer, parallel = self.net, self.optimizer, self.parallel
        examples, start = 0, time.perf_counter()
        while True:
            xb, yb = self._batch(batch_size)
            if parallel is not None:
                parallel.forward_backward(xb, yb)
            else:
                forward_backward(net, xb, yb)
            optimizer.step(net)
            examples += len(xb)                      # what was computed, even if x is short
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return examples, elapsed

    def _batch(self, batch_size):
        if self._position + batch_size > len(self.x):
            self._position = 0
        i = self._position
        self._position += batch_size
        return self.x[i:i + batch_size], self.y[i:i + batch_size]

    def infer(self, x):
        """Seconds to classify every image of x, INFERENCE_BATCH at a time."""
        predictor = self.parallel if self.parallel is not None else self.net
        start = time.perf_counter()
        predictor.predict(x, batch_size=INFERENCE_BATCH)
        return time.perf_counter() - start

    def close(self):
        if self.parallel is not None:
            self.parallel.close()


class TorchRunner(CnnlibRunner):
    """The same network in PyTorch, starting from the cnnlib network's weights."""

    name = "PyTorch"
    parallel = None     # PyTorch uses its own threads

    def __init__(self, net, x, y):
        import torch

        self.torch = torch
        self.model = self.from_cnnlib(net)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.loss = torch.nn.CrossEntropyLoss()
        self._position = 0

    def from_cnnlib(self, net):
        """A torch.nn.Sequential with the same layers and a copy of the same weights."""
        nn = self.torch.nn
        from .batchnorm import BatchNorm2d
        from .dropout import Dropout
        from .layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU

        modules = []
        for layer in net:
            if isinstance(layer, Conv2d):
                module = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                   layer.stride, layer.padding)
            elif isinstance(layer, Linear):
                module = nn.Linear(layer.in_features, layer.out_features)
            elif isinstance(layer, MaxPool2d):
                module = nn.MaxPool2d(layer.kernel_size, layer.stride)
            elif isinstance(layer, ReLU):
                module = nn.ReLU()
            elif isinstance(layer, Flatten):
                module = nn.Flatten()
            elif isinstance(layer, BatchNorm2d):     # W, b are PyTorch's weight, bias
                module = nn.BatchNorm2d(layer.num_features, layer.eps, layer.momentum)
            elif isinstance(layer, Dropout):
                module = nn.Dropout(layer.p)
            else:
                raise ValueError(f"bench knows no PyTorch twin of {layer!r}")
            with self.torch.no_grad():
                for key, torch_name in (("W", "weight"), ("b", "bias")):
                    if key in layer.params:
                        getattr(module, torch_name).copy_(self.torch.from_numpy(layer.params[key]))
            modules.append(module)
        return nn.Sequential(*modules)

    def train(self, batch_size, seconds):
        model, optimizer, loss_fn = self.model, self.optimizer, self.loss
        model.train()                                # batch norm and dropout: training mode
        examples, start = 0, time.perf_counter()
        while True:
            xb, yb = self._batch(batch_size)
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
            optimizer.step()
            examples += len(xb)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return examples, elapsed

    def infer(self, x):
        x = self.torch.from_numpy(x)
        self.model.eval()                            # as cnnlib's predict does
        start = time.perf_counter()
        with self.torch.inference_mode():
            for i in range(0, len(x), INFERENCE_BATCH):
                self.model(x[i:i + INFERENCE_BATCH]).argmax(dim=1)
        return time.perf_counter() - start


# ------------------------------------------------------------------------------------ compare

def _torch_or_none(threads):
    """(torch module, description) or (None, reason) when PyTorch cannot be imported."""
    try:
        import torch
    except ImportError as error:
        return None, f"not installed ({error}); pip install -r requirements-bench.txt"
    torch.set_num_threads(threads)
    return torch, f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"


def compare(runners, batch_sizes=(20, 64), seconds=3.0, rounds=3, inference=True, seed=0):
    """Time every runner on the same work, alternating between them.

    runners: list of CnnlibRunner-like objects. Each (batch size, runner) trains for ``seconds``
    in total, split into ``rounds`` slices; in every round the runners take turns, and the order
    reverses from one round to the next. Inference: passes over 10,000 images for ``seconds`` in
    total, split the same way.
    Returns (rates, cpu_rates), each {(task, runner name): examples per second} with task
    "train 20", "train 64", ..., "inference": per second of wall-clock time, and per second of
    this process's CPU time (with one thread, about what an otherwise idle machine would give).
    """
    x_test, _ = _random_data(np.random.default_rng(seed + 1), INFERENCE_IMAGES)
    totals = {}                                  # (task, name) -> [examples, seconds, CPU seconds]
    for runner in runners:                       # warm-up: first calls allocate and load code
        for batch_size in batch_sizes:
            runner.train(batch_size, 0.0)
        if inference:
            runner.infer(x_test)
    for r in range(rounds):
        order = runners if r % 2 == 0 else runners[::-1]
        for batch_size in batch_sizes:
            for runner in order:
                cpu = time.process_time()
                n, t = runner.train(batch_size, seconds / rounds)
                _add(totals, (f"train {batch_size}", runner.name), n, t, time.process_time() - cpu)
        if inference:
            for runner in order:                 # whole passes over x_test for seconds / rounds
                cpu, images, elapsed = time.process_time(), 0, 0.0
                while elapsed < seconds / rounds or images == 0:
                    elapsed += runner.infer(x_test)
                    images += len(x_test)
                _add(totals, ("inference", runner.name), images, elapsed, time.process_time() - cpu)
    rates = {key: n / t for key, (n, t, _) in totals.items()}
    cpu_rates = {key: n / cpu for key, (n, _, cpu) in totals.items()}
    return rates, cpu_rates


def _add(totals, key, examples, seconds, cpu_seconds):
    total = totals.setdefault(key, [0, 0.0, 0.0])
    total[0] += examples
    total[1] += seconds
    total[2] += cpu_seconds


def format_table(rates, names, batch_sizes=(20, 64), inference=True):
    """The results as an aligned text table, with the cnnlib/PyTorch ratio when both ran."""
    tasks = [(f"train {b}", f"training, batch {b} (examples/s)") for b in batch_sizes]
    if inference:
        tasks.append(("inference", f"inference, {INFERENCE_BATCH}/batch (images/s)"))
    header = f"{'':<36}" + "".join(f"{name:>12}" for name in names)
    if len(names) == 2:
        header += f"{names[0] + '/' + names[1]:>18}"
    lines = [header]
    for task, label in tasks:
        line = f"{label:<36}" + "".join(f"{rates[task, name]:>12,.0f}" for name in names)
        if len(names) == 2:
            line += f"{rates[task, names[0]] / rates[task, names[1]]:>18.2f}"
        lines.append(line)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ recipe

def time_recipe(epochs=2, seed=0, evaluate=True, workers=1):
    """Wall-clock of the original recipe with ``cnnlib.train.Trainer`` on real MNIST.

    50,000 training digits, a random 24x24 crop each, batch 20, SGD lr 0.01 momentum 0.9,
    ``epochs`` epochs, no validation during the run. Returns a dict with the seconds (wall-clock
    and CPU), examples/s and (when ``evaluate``) the centre-crop test accuracy. Needs the MNIST
    files already in ``data/mnist`` (``python -m cnnlib data``). workers: processes sharing every
    batch (``Trainer``'s ``workers``; their start-up, about 0.3 s, is timed too); the CPU time is
    then this process's only.
    """
    from . import data, train

    split = data.load_mnist_split(progress=False)
    rng = np.random.default_rng(seed)
    net = seed_net(rng=rng)
    trainer = train.Trainer(net, split.x_train, split.y_train, optimizer=SGD(LR, momentum=MOMENTUM),
                            batch_size=20, rng=rng, validate_every=None, workers=workers)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        trainer.fit(epochs=epochs)
    finally:
        trainer.close()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    result = {"seconds": seconds, "cpu_seconds": cpu_seconds, "examples": trainer.examples_seen,
              "examples_per_second": trainer.examples_seen / seconds}
    if evaluate:
        result["test_accuracy"] = train.evaluate(net, split.x_test, split.y_test)
    return result


# ------------------------------------------------------------------------------------ command

def main(seconds=3.0, rounds=3, threads=1, batch_sizes=(20, 64), use_torch=True,
         inference=True, recipe=False, seed=0, out=print, model="seed", cores=None):
    """Run the benchmark and print (via ``out``) the machine, the table and the ratios.

    model: a name from ``cnnlib.architectures.MODELS`` ("seed": the reference network; "deep": the
    deeper network of notebook 09, with batch norm and dropout in training mode).
    cores: instead of ``threads``, give each library this many cores its own way: PyTorch as
    threads, cnnlib as processes of one BLAS thread each (``cnnlib.parallel``).
    batch_sizes: the training batches timed, cycling through ``POOL`` random images (or as many
    as the largest batch, so that every batch is as large as it says)."""
    if cores is not None and threads != 1:
        raise ValueError("give threads or cores, not both")
    rng = np.random.default_rng(seed)
    net = build_model(model, rng)
    what = "the reference network" if model == "seed" else f"the {model!r} network"
    out(f"cnnlib {__version__} benchmark: {what} ({net.num_parameters():,} parameters), "
        f"24x24 inputs, float32")
    blas_threads = set_threads(threads)
    out(f"BLAS threads: {blas_threads}")
    if "not set" in blas_threads:
        out("  (so numpy and PyTorch may use different numbers of threads: read the ratios "
            "with care, or pip install threadpoolctl)")
    workers = cores or 1
    if workers > 1:
        out(f"cnnlib: {workers} processes sharing every batch (cnnlib.parallel), one BLAS "
            "thread each")
    # A batch larger than the pool would be cut to the pool's size and counted in full.
    x, y = _random_data(rng, max(POOL, *batch_sizes))
    runners = [CnnlibRunner(net, x, y, workers)]
    try:
        torch, torch_text = (_torch_or_none(cores or threads) if use_torch
                             else (None, "skipped (--no-torch)"))
        out(f"PyTorch: {torch_text}")
        if torch is not None:
            runners.append(TorchRunner(net, x, y))
        for line in machine_info():
            out(line)
        out(f"timing {seconds:g} s per task and library, in {rounds} alternating slices...")
        rates, cpu_rates = compare(runners, batch_sizes, seconds, rounds, inference, seed)
    finally:
        runners[0].close()                        # cnnlib's worker processes, if any
    names = [r.name for r in runners]
    out("per second of wall-clock time:")
    out(format_table(rates, names, batch_sizes, inference))
    if workers == 1:
        out("per second of CPU time (all threads added up; on a shared machine, with --threads 1, "
            "closer to what an idle machine gives):")
        out(format_table(cpu_rates, names, batch_sizes, inference))
    else:   # the workers' CPU time is not this process's
        out("(no CPU-time table with --cores: cnnlib's worker processes are not counted in it)")
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        out(f"load average (1 min) at the end: {load:.1f}")
        if max(threads, workers) > 1 and load > (os.cpu_count() or 1):
            # Measured here: with more runnable threads than cores, both libraries' spinning
            # worker threads wait on each other and training gets ~5x slower than on 1 thread.
            out(f"warning: the machine was busier than its {os.cpu_count()} cores; multi-threaded "
                "timings collapse under such load, --threads 1 measures the code, not the queue")
    if recipe:
        on = f", {workers} processes" if workers > 1 else ""
        out("original recipe: 2 epochs of 50,000 random 24x24 crops, batch 20, SGD lr 0.01 "
            f"momentum 0.9 (cnnlib.train.Trainer{on})...")
        result = time_recipe(seed=seed, workers=workers)
        cpu_text = f" ({result['cpu_seconds']:.1f} s of CPU time)" if workers == 1 else ""
        out(f"  {result['seconds']:.1f} s{cpu_text} for "
            f"{result['examples']:,} examples ({result['examples_per_second']:,.0f} examples/s); "
            f"test accuracy "
            f"{result['test_accuracy']:.4f}")
    return rates
