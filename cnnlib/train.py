"""Training: mini-batch SGD over randomly cropped MNIST digits, one step at a time or whole epochs.

The original demo's recipe: 50,000 training digits (28x28), one random 24x24 crop of each per
example, shuffled every epoch, mini-batches of 20, SGD with lr 0.01 and momentum 0.9, two epochs,
validation on the last 10,000 training digits (centre crop)::

    import numpy as np
    from cnnlib import architectures, data, optim, train

    split = data.load_mnist_split()
    rng = np.random.default_rng(0)                     # the one source of randomness
    net = architectures.seed_net(rng=rng)
    trainer = train.Trainer(net, split.x_train, split.y_train, split.x_val, split.y_val,
                            optimizer=optim.SGD(lr=0.01, momentum=0.9), batch_size=20, rng=rng)
    loss = trainer.step()                  # one mini-batch -> its mean loss (a float)
    trainer.optimizer.lr = 0.005           # lr and momentum may change between steps
    trainer.fit(epochs=2)                  # whole epochs (validates every 10,000 examples)
    trainer.evaluate()                     # validation accuracy now, e.g. 0.985
    trainer.examples_seen, trainer.history.loss[-1], trainer.history.val_accuracy[-1]

    # or in one call, returning the History:
    history = train.fit(net, split.x_train, split.y_train, split.x_val, split.y_val, epochs=2)
    train.evaluate(net, split.x_test, split.y_test)               # centre crop
    train.evaluate(net, split.x_test, split.y_test, crops=4)      # 4 random crops, averaged

``trainer.history`` holds, per step, the mini-batch loss, the learning rate, the examples seen
and the forward / backward milliseconds per example; and per validation, the examples seen and the
accuracy. Callbacks (``Callback`` subclasses such as ``ProgressBar``, or any object with some of
the methods on_run_start, on_step, on_validation, on_epoch_end, on_run_end) hear about every step
and validation, which is how progress bars and live plots follow a run. A running ``fit`` or ``run``
stops after the current step when ``trainer.stop()`` is called (from a callback or another thread).

Augmentation is a plain function ``augment(x, rng) -> x_aug`` on a batch of float32
``(B, 1, 28, 28)`` images returning ``(B, 1, 24, 24)`` network inputs; the default is
``RandomCrop(24)``. Chain your own with ``Compose``, e.g. ``Compose(thicken, RandomCrop(24))``
(every augmentation is in ``cnnlib.augment``).

Seeded runs reproduce exactly on one machine: every random choice (shuffling, crops, and the
weights, when the network is built from the same generator) comes from one
``numpy.random.Generator``.

Constant-rate SGD never settles: at the end of a run the weights still wander around a minimum,
and the end point is one random draw of that wandering. ``WeightAverage`` (a callback) keeps the
mean of the weights over the last part of a run, which sits nearer the middle (Polyak-Ruppert
averaging; PyTorch's ``torch.optim.swa_utils.AveragedModel``); ``Recipe(average_last=0.5)`` uses
it over the second of two epochs.

``Trainer(..., workers=2)`` shares every batch between two processes, one per core
(``cnnlib.parallel``).

What it trades away: a single network; no checkpoints mid-run (save the net with
``cnnlib.serialization.save_model`` when you like); no early stopping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .augment import AUGMENTATIONS, CenterCrop, RandomCrop, make_augment, slashed_zeros
from .data import to_float
from .network import forward_backward
from .optim import SGD
from .seeding import as_generator

__all__ = [
    "History", "Trainer", "fit", "evaluate", "predict_proba",
    "Constant", "Cosine", "make_schedule", "SCHEDULES",
    "Callback", "ProgressBar", "WeightAverage", "Recipe", "train_recipe",
]


# --------------------------------------------------------------------------------------- labels

def _check_labels(images, labels, what, num_classes=None):
    """Integer labels, one per image, each a class index 0..num_classes - 1 -> int64 (N,)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images) or labels.dtype.kind not in "iu":
        raise ValueError(f"{what}: expected integer labels of shape ({len(images)},); got "
                         f"{labels.dtype.name} array of shape {labels.shape}")
    labels = labels.astype(np.int64)
    high = num_classes if num_classes is not None else np.inf
    bad = np.flatnonzero((labels < 0) | (labels >= high))
    if len(bad):
        limit = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
        raise ValueError(f"{what}: labels are class indices {limit}; {what}[{bad[0]}] is "
                         f"{labels[bad[0]]} ({len(bad)} such label(s))")
    return labels


def _num_classes(net):
    """The number of output classes of a network ending in a Linear layer, else None."""
    for layer in reversed(list(net)) if hasattr(net, "__iter__") else ():
        if hasattr(layer, "out_features"):
            return int(layer.out_features)
    return None


# ------------------------------------------------------------------------------------ schedules

class Constant:
    """lr factor 1 throughout."""

    def __call__(self, examples_seen):
        return 1.0

    def __repr__(self):
        return "Constant()"


class Cosine:
    """lr factor falling from 1 to ``final`` along half a cosine over ``total`` examples.

    factor(t) = final + (1 - final) * (1 + cos(pi * t)) / 2,  t = min(examples_seen / total, 1).
    """

    def __init__(self, total, final=0.0):
        if total < 1 or not 0 <= final <= 1:
            raise ValueError(f"Cosine needs total >= 1 and 0 <= final <= 1; got total={total}, "
                             f"final={final}")
        self.total, self.final = int(total), float(final)

    def __call__(self, examples_seen):
        t = min(examples_seen / self.total, 1.0)
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * t))

    def __repr__(self):
        return f"Cosine(total={self.total}, final={self.final})"


SCHEDULES = ("constant", "step", "cosine")


def make_schedule(name, total_examples):
    """A schedule by name for a run of ``total_examples``: "constant"; "step" (x0.1 at half the
    run, again at three quarters); "cosine" (to zero at the end)."""
    if name == "constant":
        return Constant()
    if name == "step":
        return _HalfAndThreeQuarters(total_examples)
    if name == "cosine":
        return Cosine(total_examples)
    raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")


class _HalfAndThreeQuarters:
    """lr factor 1, then 0.1 from half of ``total`` examples, then 0.01 from three quarters."""

    def __init__(self, total):
        if total < 1:
            raise ValueError(f"a step schedule needs total >= 1 examples; got {total}")
        self.total = int(total)

    def __call__(self, examples_seen):
        return 1.0 if examples_seen < self.total // 2 else (
            0.1 if examples_seen < 3 * self.total // 4 else 0.01)

    def __repr__(self):
        return f"make_schedule('step', {self.total})"


# ------------------------------------------------------------------------------------ callbacks

class Callback:
    """Hooks a Trainer calls; override what you need. ``trainer.history`` has the numbers."""

    def on_run_start(self, trainer):
        """When ``run``/``fit`` starts; ``trainer.planned_examples`` is how many examples it
        will take (None for ``run(steps=...)``)."""

    def on_step(self, trainer, loss):
        """After every mini-batch step; ``loss`` is its mean loss."""

    def on_validation(self, trainer, accuracy):
        """After every validation (every ``validate_every`` examples and at the end of fit)."""

    def on_epoch_end(self, trainer):
        """After the last mini-batch of each pass over the training set."""

    def on_run_end(self, trainer):
        """When ``run``/``fit`` returns (also after ``trainer.stop()``)."""


class ProgressBar(Callback):
    """A tqdm bar on stderr counting examples: examples/s, smoothed loss, validation accuracy.

    total: examples the bar expects (when None, each run's ``trainer.planned_examples``).
    Refreshes at most every ``every`` steps to keep the hot loop lean.
    """

    def __init__(self, total=None, every=50, desc="train", file=None, disable=False):
        self.total, self.every, self.desc = total, max(1, int(every)), desc
        self._fixed_total = total
        self.file, self.disable = file, disable
        self.bar = None
        self._counted = 0

    def _open(self, trainer):
        import sys

        from tqdm import tqdm

        if self._fixed_total is None:
            self.total = trainer.planned_examples
        self.bar = tqdm(total=self.total, desc=self.desc, unit="ex", unit_scale=True,
                        file=self.file or sys.stderr, disable=self.disable, smoothing=0.1,
                        dynamic_ncols=True)
        self._counted = trainer.examples_seen

    def _postfix(self, trainer):
        history = trainer.history
        postfix = {"lr": f"{trainer.optimizer.lr:.3g}"}
        if history.loss:  # a run of no steps has no loss to show
            postfix["loss"] = f"{np.mean(history.loss[-self.every:]):.3f}"
        if history.val_accuracy:
            postfix["val"] = f"{history.val_accuracy[-1]:.4f}"
        self.bar.set_postfix(postfix, refresh=False)

    def on_run_start(self, trainer):
        if self.bar is None:
            self._open(trainer)

    def on_step(self, trainer, loss):
        if self.bar is None:  # stepped by hand, without run
            self._open(trainer)
        if len(trainer.history.loss) % self.every == 0:
            self._postfix(trainer)
            self.bar.update(trainer.examples_seen - self._counted)
            self._counted = trainer.examples_seen

    def on_validation(self, trainer, accuracy):
        if self.bar is not None:
            self._postfix(trainer)
            self.bar.refresh()

    def on_run_end(self, trainer):
        if self.bar is not None:
            self._postfix(trainer)
            self.bar.update(trainer.examples_seen - self._counted)
            self.bar.refresh()
            self.bar.close()
            self.bar = None


class WeightAverage(Callback):
    """The running mean of the network's parameters over every step after ``start`` examples.

    With w_k the weights after the k-th step past ``start``, mean_1 = w_1 and
    mean_k = mean_{k-1} + (w_k - mean_{k-1}) / k, for every parameter: the mean of w_1 ... w_k
    (Polyak-Ruppert averaging), kept in float64.
    ``apply(net)`` copies the mean into the network. Only the parameters are averaged, so a
    network with batch norm (whose running statistics would not fit the averaged weights) is
    refused.

    start: examples seen after which steps join the mean (0: from the first step).
    """

    def __init__(self, start=0):
        if start < 0:
            raise ValueError(f"start must be >= 0 examples; got {start!r}")
        self.start = start
        self.mean = None    # {name: array}, once the first step has joined
        self.steps = 0

    def on_run_start(self, trainer):
        self._check(trainer.net)

    @staticmethod
    def _check(net):
        with_buffers = [type(layer).__name__ for layer in net if getattr(layer, "buffers", None)]
        if with_buffers:
            raise ValueError(
                f"WeightAverage averages parameters only, and this network has layers with "
                f"running statistics ({', '.join(with_buffers)}) that would not fit the averaged "
                "weights; train it without weight averaging")

    def on_step(self, trainer, loss):
        if trainer.examples_seen <= self.start:
            return
        if self.mean is None:                    # the first step to join: w_1 itself
            self._check(trainer.net)             # (also when steps are taken one by one)
            self.mean = {name: param.astype(np.float64) for name, param, _ in
                         trainer.net.parameters()}
            self.steps = 1
            return
        self.steps += 1
        for name, param, _ in trainer.net.parameters():
            mean = self.mean[name]
            mean += (param - mean) / self.steps

    def apply(self, net):
        """Copy the averaged weights into ``net`` (in place, in its dtype). Returns net."""
        if self.mean is None:
            raise ValueError(f"no step has been averaged yet (averaging starts after "
                             f"{self.start:,} examples)")
        for name, param, _ in net.parameters():
            param[...] = self.mean[name]
        return net

    def __repr__(self):
        return f"WeightAverage(start={self.start})"


# -------------------------------------------------------------------------------------- history

@dataclass
class History:
    """What a Trainer measured.

    Per step (same length): ``examples`` (examples seen after the step), ``loss`` (mean mini-batch
    loss), ``lr``, ``forward_ms`` and ``backward_ms`` (milliseconds per example: the forward pass
    plus loss, and the backward pass). Per validation: ``val_examples``, ``val_accuracy``.
    """

    examples: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    forward_ms: list = field(default_factory=list)
    backward_ms: list = field(default_factory=list)
    val_examples: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)

    def summary(self):
        """A small JSON-friendly dict: steps, examples, final smoothed loss, validations,
        mean forward/backward ms per example."""
        tail = self.loss[-100:]
        return {
            "steps": len(self.loss),
            "examples": int(self.examples[-1]) if self.examples else 0,
            "final_loss": float(np.mean(tail)) if tail else None,
            "val_examples": [int(e) for e in self.val_examples],
            "val_accuracy": [float(a) for a in self.val_accuracy],
            "forward_ms_per_example": float(np.mean(self.forward_ms)) if self.forward_ms else None,
            "backward_ms_per_example": (float(np.mean(self.backward_ms))
                                        if self.backward_ms else None),
        }


# -------------------------------------------------------------------------------------- trainer

class Trainer:
    """Trains ``net`` one mini-batch at a time on (augmented) images.

    net: a Sequential (anything with forward, backward, parameters, predict_proba, train).
    x_train: uint8 (N, 28, 28) or float (N, 1, H, W) images, converted once to float32;
    y_train: (N,) integer labels. x_val, y_val: the same for validation (optional), centre-cropped
    once to the network's input size ``crop_size``.
    optimizer: default ``SGD(lr=0.01, momentum=0.9)``; ``trainer.optimizer.lr``/``.momentum`` may
    be changed between steps. With a ``schedule`` (a callable examples_seen -> lr factor), every
    step sets ``optimizer.lr = trainer.base_lr * schedule(examples_seen)``; change ``base_lr``.
    augment: ``augment(x, rng) -> x_aug``, (B, 1, H, W) -> (B, 1, crop_size, crop_size); default
    ``RandomCrop(crop_size)``.
    rng: the numpy Generator (or a seed for one) for shuffling and augmentation.
    validate_every: validate after every this many examples during ``run``/``fit`` (None: never
    mid-run; ``fit`` still validates at its end).
    workers: processes that share every batch (``cnnlib.parallel.DataParallel``; 1: this process
    alone). They start at the first step and stop with ``close()`` (or when the Trainer is
    garbage-collected). A seeded run reproduces exactly for a given number of workers; different
    numbers of workers differ in the last bits of every step, so their runs drift apart.
    """

    def __init__(self, net, x_train, y_train, x_val=None, y_val=None, *, optimizer=None,
                 batch_size=20, rng=None, augment=None, crop_size=24, schedule=None,
                 validate_every=10_000, callbacks=(), workers=1):
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")
        if not isinstance(workers, (int, np.integer)) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
        self.net = net
        self.x_train = to_float(x_train)
        num_classes = _num_classes(net)
        self.y_train = _check_labels(self.x_train, y_train, "y_train", num_classes)
        if len(self.x_train) == 0:
            raise ValueError("x_train has no examples")
        if (x_val is None) != (y_val is None):
            raise ValueError("give both x_val and y_val, or neither")
        self.x_val = self.y_val = None
        if x_val is not None:
            # Validation always sees the centre crop; convert and crop once, copy to be contiguous.
            self.x_val = np.ascontiguousarray(CenterCrop(crop_size)(to_float(x_val)))
            self.y_val = _check_labels(self.x_val, y_val, "y_val", num_classes)
        self.optimizer = optimizer if optimizer is not None else SGD(lr=0.01, momentum=0.9)
        self.base_lr = self.optimizer.lr
        self.schedule = schedule
        self.batch_size = int(batch_size)
        self.rng = as_generator(rng)
        self.augment = augment if augment is not None else RandomCrop(crop_size)
        self.crop_size = crop_size
        self.validate_every = validate_every
        self.callbacks = list(callbacks)
        self.history = History()
        self.examples_seen = 0
        self.epochs_done = 0
        self._order = None      # this epoch's permutation of the training set
        self._position = 0      # next index into it
        self._stop = False
        self.workers = int(workers)
        self._parallel = None   # the DataParallel, started at the first step when workers > 1
        self._parallel_starts = 0
        self.weight_average = None   # train_recipe's WeightAverage, when it averages
        self.planned_examples = None  # examples the current run will take, for its callbacks

    def _notify(self, event, *args):
        # Callbacks may be Callback subclasses or any object with some of its methods.
        for callback in self.callbacks:
            hook = getattr(callback, event, None)
            if hook is not None:
                hook(self, *args)

    # ---- one step

    @property
    def epoch(self):
        """Passes over the training set so far, fractional: examples_seen / N."""
        return self.examples_seen / len(self.x_train)

    def _next_indices(self):
        if self._order is None or self._position >= len(self._order):
            self._order = self.rng.permutation(len(self.x_train))
            self._position = 0
        indices = self._order[self._position:self._position + self.batch_size]
        self._position += len(indices)
        return indices

    def step(self):
        """Train on one mini-batch; returns its mean loss (float).

        The batch is the next ``batch_size`` examples of this epoch's shuffle (the last batch of
        an epoch may be smaller), augmented; then forward, loss, backward, optimizer step.
        """
        self.net.train()
        indices = self._next_indices()
        x = self.augment(self.x_train[indices], self.rng)
        y = self.y_train[indices]
        if self.schedule is not None:
            self.optimizer.lr = self.base_lr * self.schedule(self.examples_seen)
        loss, forward_s, backward_s, timed = self._forward_backward(x, y)
        if not math.isfinite(loss):  # before any update: the weights stay as they were
            self._position -= len(indices)  # and the batch is not counted as seen
            raise FloatingPointError(
                f"the loss became {loss} at step {len(self.history.loss) + 1}; the learning "
                f"rate ({self.optimizer.lr:g}) is probably too high — lower it and start again")
        self.optimizer.step(self.net)
        self.examples_seen += len(indices)
        history = self.history
        history.examples.append(self.examples_seen)
        history.loss.append(loss)
        history.lr.append(self.optimizer.lr)
        history.forward_ms.append(forward_s * 1e3 / timed)
        history.backward_ms.append(backward_s * 1e3 / timed)
        self._notify("on_step", loss)
        if self._position >= len(self._order):
            self.epochs_done += 1
            self._notify("on_epoch_end")
        return loss

    def _forward_backward(self, x, y):
        """Forward, loss and backward on the batch; fills the network's grads.

        Returns (loss, forward seconds, backward seconds, examples timed): with workers, the
        times are those of this process's share, which the others compute side by side.
        """
        if self.workers > 1:
            parallel = self._data_parallel()
            loss = parallel.forward_backward(x, y)
            return (loss, parallel.forward_seconds, parallel.backward_seconds,
                    parallel.local_examples)
        loss, forward_s, backward_s = forward_backward(self.net, x, y)
        return loss, forward_s, backward_s, len(x)

    def _data_parallel(self):
        """The DataParallel running this Trainer's network on ``workers`` processes, started
        when first needed and again after ``close()`` or an interrupted step."""
        if self._parallel is None or self._parallel.closed:
            from .parallel import DataParallel   # imported here: most runs use one process

            # The workers' dropout seeds come from this run's seed without drawing from
            # self.rng (which would change the shuffles and crops), and differ at each start.
            self._parallel_starts += 1
            base = self.rng.bit_generator.seed_seq.generate_state(1)[0]
            seed = int(np.random.SeedSequence([base, self._parallel_starts]).generate_state(1)[0])
            self._parallel = DataParallel(self.net, self.workers, seed=seed)
        return self._parallel

    def close(self):
        """Stop the worker processes, if any. The Trainer may still be used: the next step
        starts new ones (with new dropout seeds), and evaluation runs in this process."""
        if self._parallel is not None:
            self._parallel.close()

    # ---- validation

    def evaluate(self, x=None, y=None, limit=None, batch_size=64):
        """Accuracy (float in [0, 1]) on (x, y), default the validation set, centre crop.

        x: images as in the constructor (cropped to ``crop_size`` at the centre when larger);
        limit: only the first ``limit`` examples (quick looks while training). Not recorded in
        the history; ``validate()`` is.
        """
        if x is None:
            if self.x_val is None:
                raise ValueError("this Trainer has no validation set; pass x and y, or build it "
                                 "with x_val and y_val")
            x, y = self.x_val, self.y_val
        else:
            x = to_float(x)
            y = _check_labels(x, y, "y")
            if x.shape[-1] != self.crop_size or x.shape[-2] != self.crop_size:
                x = CenterCrop(self.crop_size)(x)
        if limit is not None:
            x, y = x[:limit], y[:limit]
        running = self._parallel is not None and not self._parallel.closed
        predictor = self._parallel if running else self.net    # share it while training
        predictions = predictor.predict_proba(x, batch_size=batch_size).argmax(axis=1)
        return float(np.mean(predictions == y))

    def validate(self):
        """Validation accuracy now, recorded in the history and told to the callbacks."""
        accuracy = self.evaluate()
        self.history.val_examples.append(self.examples_seen)
        self.history.val_accuracy.append(accuracy)
        self._notify("on_validation", accuracy)
        return accuracy

    # ---- loops

    def stop(self):
        """Ask a running ``run``/``fit`` to return after the current step (thread-safe enough:
        it only sets a flag the loop reads)."""
        self._stop = True

    def run(self, steps=None, examples=None, validate_at_end=False):
        """Take ``steps`` steps, or steps until ``examples`` more examples are seen (one of them).

        Validates whenever examples_seen crosses a multiple of ``validate_every`` (when there is a
        validation set), and at the end if ``validate_at_end`` (unless just done or stopped).
        Returns the history. ``stop()`` ends it early.
        """
        if (steps is None) == (examples is None):
            raise ValueError("run needs exactly one of steps= or examples=")
        self._stop = False
        target = None if examples is None else self.examples_seen + int(examples)
        self.planned_examples = None if examples is None else int(examples)
        taken = 0
        self._notify("on_run_start")
        try:
            while not self._stop:
                if steps is not None and taken >= steps:
                    break
                if target is not None and self.examples_seen >= target:
                    break
                before = self.examples_seen
                self.step()
                taken += 1
                every = self.validate_every
                if (every and self.x_val is not None
                        and self.examples_seen // every > before // every):
                    self.validate()
            if (validate_at_end and not self._stop and self.x_val is not None
                    and (not self.history.val_examples
                         or self.history.val_examples[-1] != self.examples_seen)):
                self.validate()
        finally:
            self._notify("on_run_end")
            self.planned_examples = None
        return self.history

    def fit(self, epochs=1):
        """Train for ``epochs`` passes over the training set (from wherever the current epoch
        stands), then validate once more unless that was just done. Returns the history."""
        if epochs <= 0:
            raise ValueError(f"epochs must be > 0; got {epochs!r}")
        return self.run(examples=int(round(epochs * len(self.x_train))), validate_at_end=True)


def fit(net, x_train, y_train, x_val=None, y_val=None, *, epochs=2, batch_size=20, lr=0.01,
        momentum=0.9, weight_decay=0.0, schedule="constant", rng=0, augment=None,
        validate_every=10_000, progress=False, callbacks=()):
    """Train ``net`` with SGD (momentum, L2 weight decay) for ``epochs``; returns the History.

    The defaults are the original demo's recipe. schedule: "constant", "step", "cosine" (see
    ``make_schedule``) or a callable examples_seen -> lr factor. rng: a Generator or seed.
    progress: show a tqdm bar on stderr.
    """
    total = int(round(epochs * len(x_train)))
    if isinstance(schedule, str):
        schedule = None if schedule == "constant" else make_schedule(schedule, total)
    callbacks = list(callbacks) + ([ProgressBar(total)] if progress else [])
    trainer = Trainer(net, x_train, y_train, x_val, y_val,
                      optimizer=SGD(lr, momentum=momentum, weight_decay=weight_decay),
                      batch_size=batch_size, rng=rng, augment=augment, schedule=schedule,
                      validate_every=validate_every, callbacks=callbacks)
    return trainer.fit(epochs)


# ----------------------------------------------------------------------------------- evaluation

def predict_proba(net, images, *, crops=1, seed=0, size=24, batch_size=64):
    """Class probabilities of ``net`` for images, averaged over crops: (N, K) float.

    images: uint8 (N, H, W) or float (N, 1, H, W). crops=1: the centre crop (the standard
    evaluation). crops > 1: the mean of the probabilities of ``crops`` random crops per image
    (the original demo's test-time averaging), drawn from ``numpy.random.default_rng(seed)`` so a
    given seed always gives the same answer.
    """
    if not isinstance(crops, (int, np.integer)) or crops < 1:
        raise ValueError(f"crops must be an integer >= 1; got {crops!r}")
    x = to_float(images)
    if crops == 1:
        return net.predict_proba(np.ascontiguousarray(CenterCrop(size)(x)), batch_size)
    rng = np.random.default_rng(seed)
    crop = RandomCrop(size)
    total = None
    for _ in range(crops):
        probs = net.predict_proba(np.ascontiguousarray(crop(x, rng)), batch_size)
        total = probs if total is None else total + probs
    return total / crops


def evaluate(net, images, labels, *, crops=1, seed=0, size=24, batch_size=64):
    """Accuracy (float in [0, 1]) of ``net`` on images with labels (N,); crops as in
    ``predict_proba``."""
    labels = _check_labels(np.asarray(images), labels, "labels")
    probs = predict_proba(net, images, crops=crops, seed=seed, size=size, batch_size=batch_size)
    return float(np.mean(probs.argmax(axis=1) == labels))


# --------------------------------------------------------------------------------------- recipes

def _model_names():
    from .architectures import MODELS   # imported here, as in train_recipe, to stay light

    return sorted(MODELS)


def _option(default, help, check=None, choices=None, metavar=None, always=False, quick=False):
    """A Recipe field with what the CLI's ``train`` needs to offer it as ``--name-with-dashes``.

    help: the --help text. check: the name of the CLI's check of the value ("positive_int",
    "seed", "positive_float", "non_negative_float", "fraction", "momentum"). choices: the allowed
    values, or a function returning them. always: the command that reproduces a run names this
    option even at its default (otherwise only when it differs). quick: a size for quick runs,
    listed after the others. A bool field is a flag (``--full-train``).
    """
    return field(default=default, metadata={
        "help": help, "check": check, "choices": choices, "metavar": metavar, "always": always,
        "quick": quick})


@dataclass
class Recipe:
    """Everything that decides a training run of the CLI's ``train`` (saved in the model file).

    Each field's ``metadata["help"]`` says what it does (``python -m cnnlib train --help`` shows
    them all); the defaults are the original demo's recipe. average_last uses ``WeightAverage``,
    slashed_zeros ``cnnlib.augment.slashed_zeros``, workers ``Trainer``'s ``workers``.
    """

    model: str = _option("seed", "architecture (default: seed, the demo's 7,090-parameter network)",
                         choices=_model_names, always=True)
    epochs: float = _option(2, "passes over the training set, may be fractional (default: 2)",
                            check="positive_float", always=True)
    batch_size: int = _option(20, "default: 20", check="positive_int", always=True)
    lr: float = _option(0.01, "learning rate (default: 0.01)", check="positive_float",
                        always=True)
    momentum: float = _option(0.9, "0 <= momentum < 1 (default: 0.9)", check="momentum",
                              always=True)
    weight_decay: float = _option(
        0.0, "L2 weight decay on the weights (and batch norm's scales), not biases (default: 0)",
        check="non_negative_float", always=True)
    schedule: str = _option(
        "constant", "learning-rate schedule over the run: constant, step (x0.1 at 1/2 and again "
        "at 3/4), cosine (to 0) (default: constant)", choices=SCHEDULES, always=True)
    augment: str = _option(
        "crop", "crop: random 24x24 crops (default); affine: random rotation (+-10 deg), scale "
        "(+-10%) and shift (+-2 px); elastic: affine plus elastic distortion",
        choices=AUGMENTATIONS)
    slashed_zeros: float = _option(
        0.0, "add a slashed copy (like a crossed 0) of this fraction of the training zeros to the "
        "training set (default: 0)", check="fraction", metavar="F")
    seed: int = _option(0, "seed of the one random generator: weights, shuffles, crops",
                        check="seed", always=True)
    validate_every: int = _option(10_000, "validate after every N examples (default: 10000)",
                                  check="positive_int", metavar="N", always=True)
    full_train: bool = _option(
        False, "train on all 60,000 training digits, no validation (only after choosing "
        "hyper-parameters on the validation set)")
    train_size: int | None = _option(None, "use only the first N training digits (quick runs)",
                                     check="positive_int", metavar="N", quick=True)
    val_size: int | None = _option(
        None, "validate on the first N validation digits only (quick runs)", check="positive_int",
        metavar="N", quick=True)
    average_last: float = _option(
        0.0, "end with the mean of the weights over the last fraction F of the run (Polyak "
        "averaging; 0.5 of 2 epochs: the second; default: 0, the end point)", check="fraction",
        metavar="F")
    workers: int = _option(
        1, "processes that share every batch, one per core (cnnlib.parallel; default: 1). "
        "Results depend on N: in the last bits of every step, and with batch norm (normalized "
        "per share) more", check="positive_int", metavar="N")


def train_recipe(recipe, split, *, progress=True, callbacks=()):
    """Build ``recipe.model`` and train it on ``split`` (a ``cnnlib.data.MnistSplit``).

    One Generator seeded with ``recipe.seed`` draws the initial weights, the shuffles and the
    crops, so the same recipe gives the same network on one machine. Returns the Trainer (its
    ``net`` and ``history``); the Trainer has no validation set when ``recipe.full_train``.
    With ``recipe.average_last``, ``trainer.net`` ends with the averaged weights (or the end
    point, if a callback stopped the run before averaging began); the history's last validation
    is theirs, the one before it the end point's (both at the same examples), and
    ``trainer.weight_average`` is the ``WeightAverage``.
    """
    from .architectures import build_model  # imported here: it pulls in every layer type

    if recipe.epochs <= 0:
        raise ValueError(f"epochs must be > 0; got {recipe.epochs}")
    if not 0 <= recipe.average_last <= 1:
        raise ValueError(f"average_last is a fraction of the run in [0, 1]; got "
                         f"{recipe.average_last}")
    x_train, y_train, x_val, y_val = split.x_train, split.y_train, split.x_val, split.y_val
    if recipe.full_train:
        x_train, y_train = np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val])
        x_val = y_val = None
    if recipe.train_size is not None:
        x_train, y_train = x_train[:recipe.train_size], y_train[:recipe.train_size]
    if recipe.val_size is not None and x_val is not None:
        x_val, y_val = x_val[:recipe.val_size], y_val[:recipe.val_size]
    if recipe.slashed_zeros:
        # Their own generator, so the initial weights below are those a run without them gets
        # (the shuffles and crops then cover the extra digits too, so they differ).
        extra_x, extra_y = slashed_zeros(x_train, y_train, recipe.slashed_zeros,
                                         np.random.default_rng([recipe.seed, 1]))
        x_train, y_train = np.concatenate([x_train, extra_x]), np.concatenate([y_train, extra_y])
    rng = np.random.default_rng(recipe.seed)
    net = build_model(recipe.model, rng=rng)
    total = int(round(recipe.epochs * len(x_train)))
    schedule = None if recipe.schedule == "constant" else make_schedule(recipe.schedule, total)
    average = (WeightAverage(start=total - int(round(recipe.average_last * total)))
               if recipe.average_last else None)
    callbacks = ([average] if average else []) + list(callbacks) + (
        [ProgressBar(total)] if progress else [])
    trainer = Trainer(net, x_train, y_train, x_val, y_val,
                      optimizer=SGD(recipe.lr, momentum=recipe.momentum,
                                    weight_decay=recipe.weight_decay),
                      batch_size=recipe.batch_size, rng=rng, schedule=schedule,
                      augment=make_augment(recipe.augment),
                      validate_every=recipe.validate_every, callbacks=callbacks,
                      workers=recipe.workers)
    trainer.weight_average = average
    try:
        trainer.fit(recipe.epochs)
        if average is not None and average.steps:    # none if stopped before averaging began
            average.apply(net)
            if trainer.x_val is not None:
                trainer.validate()
    finally:
        trainer.close()                  # the worker processes, if any
    return trainer
