"""The seam between layers and operations: the table of operations every layer calls.

A layer never names an implementation. ``Conv2d.forward`` calls ``ops.conv2d_forward(...)``, and
``ops`` holds, for each operation, the function to use: ``cnnlib.fast``'s by default. Another
implementation with the same signatures (``cnnlib.functional``, the loops of ``cnnlib.naive``, or
a learner's own) can be plugged in per operation and taken out again::

    from cnnlib.ops import ops

    ops.plug(conv2d_forward=my_conv_forward, conv2d_backward=my_conv_backward)
    ...                                   # every Conv2d now runs my_conv_*
    ops.unplug()                          # back to the defaults

    with ops.plug(functional):            # every operation functional defines, for this block
        net.forward(x)

A forward and its backward are plugged together (the backward reads the cache its own forward
made), so ``plug`` refuses one without the other. The table belongs to the process: worker
processes (``cnnlib.parallel``) build their networks with the defaults, and refuse to start while
something is plugged in.
"""

from . import fast

__all__ = ["OPERATIONS", "Operations", "ops"]

OPERATIONS = (
    "linear_forward", "linear_backward",
    "relu_forward", "relu_backward",
    "tanh_forward", "tanh_backward",
    "flatten_forward", "flatten_backward",
    "conv2d_forward", "conv2d_backward",
    "maxpool2d_forward", "maxpool2d_backward",
    "batchnorm_forward", "batchnorm_backward",
    "dropout_forward", "dropout_backward",
    "softmax_cross_entropy",
)


def _partner(name):
    """conv2d_forward <-> conv2d_backward; None for an operation without a pair (the loss)."""
    for this, other in (("_forward", "_backward"), ("_backward", "_forward")):
        if name.endswith(this):
            return name[:-len(this)] + other
    return None


class Operations:
    """The operations the layers call, by name: ``table.conv2d_forward(x, W, b, stride, padding)``.

    defaults: a module (or any object) with a function for every name in ``OPERATIONS``.
    """

    def __init__(self, defaults):
        missing = [name for name in OPERATIONS if not callable(getattr(defaults, name, None))]
        if missing:
            raise ValueError(f"the default operations lack {', '.join(missing)}")
        self._defaults = {name: getattr(defaults, name) for name in OPERATIONS}
        self.__dict__.update(self._defaults)

    def plug(self, source=None, **implementations):
        """Use other functions for some operations, until ``unplug`` or the end of a ``with``.

        source: a module or object; every name of ``OPERATIONS`` it defines is plugged in.
        implementations: name=function pairs, e.g. ``relu_forward=f, relu_backward=g``.
        Returns a context manager that restores what was in place before.
        """
        chosen = {}
        if source is not None:
            chosen.update({name: getattr(source, name) for name in OPERATIONS
                           if callable(getattr(source, name, None))})
            if not chosen:
                raise ValueError(f"{getattr(source, '__name__', source)!r} defines none of the "
                                 f"operations ({', '.join(OPERATIONS)})")
        chosen.update(implementations)
        for name, function in chosen.items():
            if name not in OPERATIONS:
                raise ValueError(f"there is no operation {name!r} to plug in; the operations "
                                 f"are {', '.join(OPERATIONS)}")
            if not callable(function):
                raise ValueError(f"{name} must be a function; got {type(function).__name__}")
            partner = _partner(name)
            if partner is not None and partner not in chosen:
                raise ValueError(f"plug {name} and {partner} together: the backward pass reads "
                                 f"the cache its own forward pass made")
        before = {name: getattr(self, name) for name in chosen}
        self.__dict__.update(chosen)
        return _Restore(self, before)

    def unplug(self, *names):
        """Go back to the default for each named operation (all of them when none are named).
        A forward and its backward go back together."""
        names = names or OPERATIONS
        for name in names:
            if name not in OPERATIONS:
                raise ValueError(f"there is no operation {name!r}; the operations are "
                                 f"{', '.join(OPERATIONS)}")
        for name in names:
            for each in (name, _partner(name)):
                if each is not None:
                    setattr(self, each, self._defaults[each])

    def plugged(self):
        """{name: function} for every operation that is not the default now."""
        return {name: getattr(self, name) for name in OPERATIONS
                if getattr(self, name) is not self._defaults[name]}

    def __repr__(self):
        plugged = self.plugged()
        if not plugged:
            return "Operations(defaults)"
        inner = ", ".join(f"{name}={getattr(f, '__module__', '?')}.{getattr(f, '__name__', f)}"
                          for name, f in plugged.items())
        return f"Operations(defaults, plugged: {inner})"


class _Restore:
    """What ``plug`` returns: ``with ops.plug(...):`` puts the previous functions back on exit."""

    def __init__(self, table, before):
        self._table, self._before = table, before

    def __enter__(self):
        return self._table

    def __exit__(self, *exc_info):
        self._table.__dict__.update(self._before)
        return False


ops = Operations(fast)
