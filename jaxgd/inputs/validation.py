"""Input checks at the library's boundary: bad data fails early, with a message that says where."""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Mapping, Sequence

import jax
import numpy as np

from jaxgd.inputs import frames

_MAX_LISTED = 10  # how many offending rows or values a message lists before "..."


def _list_some(items: Sequence) -> str:
    shown = ", ".join(str(i) for i in items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f", ... ({more} more)" if more > 0 else "")


def default_float() -> np.dtype:
    """JAX's default float dtype (float32, or float64 with ``jax_enable_x64``): the same as
    ``jnp.result_type(float)`` at a fiftieth of its cost, for the per-call host path.

    Example:
      >>> default_float() == jax.numpy.result_type(float)
      True
    """
    return jax.dtypes.canonicalize_dtype(np.float64)


def is_traced(value) -> bool:
    """Whether ``value`` is (or holds) a JAX tracer: an abstract value inside the caller's
    ``jit``, ``vmap``, ``grad``, ``jvp`` or ``jacfwd``. Its shape and dtype are known, its
    numbers are not, so value checks skip it (shape and dtype checks still run).

    Example:
      >>> import jax
      >>> is_traced(1.0), jax.jit(lambda x: is_traced(x))(1.0)
      (False, Array(True, dtype=bool))
    """
    # Checked ~30 times a call on the per-call host path: the common containers and leaves
    # directly (a tenth of tree_leaves' cost), anything else as a pytree.
    if isinstance(value, jax.core.Tracer):
        return True
    if value is None or isinstance(value, _PLAIN):
        return False
    if isinstance(value, tuple | list):
        return any(is_traced(item) for item in value)
    if type(value) is dict:
        return any(is_traced(item) for item in value.values())
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(value))


#: Leaves that are never tracers (a tracer is checked for first: it passes for a jax.Array).
_PLAIN = (np.ndarray, np.generic, jax.Array, int, float, complex, str, bytes)


def _check_traced(value, name: str):
    """Shape-free dtype check of a traced array: real numbers only."""
    dtype = np.dtype(value.dtype)
    if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        raise TypeError(f"{name} must hold numbers, got dtype {dtype}")
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {dtype}")
    return value


def _as_float_array(value, name: str) -> np.ndarray:
    if isinstance(value, str | bytes):
        raise TypeError(f"{name} must be an array of numbers, got a string")
    if frames.is_table(value) or frames.is_column(value):  # names aside, its numbers
        value = frames.to_numpy(value, name)
    try:
        array = np.asarray(value)
    except Exception as error:  # ragged lists and other shapeless things
        raise TypeError(f"{name} must be an array of numbers: {error}") from None
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must hold numbers, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return array


def check_data(X, y, names: tuple[str, str] = ("X", "y")) -> tuple[np.ndarray, np.ndarray]:
    """Checks a design matrix and its targets and returns them as NumPy float arrays.

    Args:
      X: features, shape (n_samples, n_features).
      y: targets, shape (n_samples,).
      names: what messages call X and y, e.g. ("X_val", "y_val") for held-out rows.

    Returns:
      (X, y) as floating-point NumPy arrays (the input's float dtype is kept).

    Traced X or y (inside the caller's ``jit``/``vmap``/``grad``) get the shape and dtype
    checks only, and come back as they are (floating, JAX's default float for integers).

    Raises:
      TypeError: if X or y do not hold real numbers.
      ValueError: if a shape is wrong, the lengths differ, the data are empty, or a value is
        NaN or infinite (the message lists the rows).

    Example:
      >>> X, y = check_data([[1.0], [2.0]], [3.0, 5.0])
      >>> X.shape, y.shape
      ((2, 1), (2,))
    """
    x_name, y_name = names
    if y is None:
        raise TypeError(f"{y_name} is required: give the targets, shape (n_samples,)")
    traced = is_traced((X, y))
    X = _traced_float(X, x_name) if is_traced(X) else _as_float_array(X, x_name)
    y = _traced_float(y, y_name) if is_traced(y) else _as_float_array(y, y_name)
    if X.ndim != 2:
        raise ValueError(
            f"{x_name} must be 2-D (n_samples, n_features), got shape {X.shape}; "
            f"reshape one feature with {x_name}[:, None]"
        )
    if y.ndim != 1:
        raise ValueError(f"{y_name} must be 1-D (n_samples,), got shape {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{x_name} has {X.shape[0]} rows but {y_name} has {y.shape[0]}: "
                         "they must match")
    if X.shape[0] == 0:
        raise ValueError(f"the data are empty: {x_name} and {y_name} have no rows")
    if X.shape[1] == 0:
        raise ValueError(f"{x_name} has no feature columns")
    if traced:  # the numbers are not known yet: NaN and infinities cannot be looked for
        return X, y
    bad_x = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad_x.size:
        raise ValueError(f"{x_name} has NaN or infinite values in rows "
                         f"{_list_some(bad_x.tolist())}")
    bad_y = np.flatnonzero(~np.isfinite(y))
    if bad_y.size:
        raise ValueError(f"{y_name} has NaN or infinite values in rows "
                         f"{_list_some(bad_y.tolist())}")
    return X, y


def _traced_float(value, name: str):
    value = _check_traced(value, name)
    if not jax.numpy.issubdtype(value.dtype, jax.numpy.floating):
        value = value.astype(jax.numpy.result_type(float))
    return value


def check_learning_rates(learning_rates, name: str = "learning_rates") -> np.ndarray:
    """Checks that learning rates are a non-empty 1-D list of finite positive numbers.

    Example:
      >>> check_learning_rates([0.1, 0.01]).tolist()
      [0.1, 0.01]
    """
    if is_traced(learning_rates):  # shape and dtype only
        rates = _traced_float(jax.numpy.asarray(learning_rates), name)
        if rates.ndim > 1:
            raise ValueError(f"{name} must be 1-D, got shape {rates.shape}")
        return rates.reshape(-1)
    rates = _as_float_array(learning_rates, name)
    if rates.ndim == 0:
        rates = rates[None]
    if rates.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {rates.shape}")
    if rates.size == 0:
        raise ValueError(f"{name} is empty: give at least one learning rate")
    bad = np.flatnonzero(~(np.isfinite(rates) & (rates > 0)))
    if bad.size:
        values = _list_some([f"{float(rates[i])!r} (index {i})" for i in bad])
        raise ValueError(f"{name} must be finite and positive; bad values: {values}")
    return rates


def _scalar(value):
    """A 0-d NumPy or JAX array as the Python number it holds; anything else unchanged."""
    if not isinstance(value, bool | int | float | str | bytes) and np.ndim(value) == 0:
        try:
            array = np.asarray(value)
        except Exception:  # not array-like: leave it to the caller's type check
            return value
        if array.dtype.kind in "iuf":
            return array.item()
    return value


def check_learning_rate(learning_rate, name: str = "learning_rate"):
    """Checks one learning rate: a finite positive number (a 0-d array will do); a traced
    scalar passes unchecked, as it is."""
    if is_traced(learning_rate):
        return _traced_scalar(learning_rate, name)
    learning_rate = _scalar(learning_rate)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float | np.number):
        raise TypeError(f"{name} must be a number, got {type(learning_rate).__name__}")
    value = float(learning_rate)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and positive, got {learning_rate!r}")
    return value


#: The largest count JAX's int32 indices hold: steps of one loop, numbers of one draw.
MAX_INT32 = 2**31 - 1


def memory_bytes() -> int | None:
    """This machine's physical memory in bytes, or None where it cannot be told."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(needed: float, what: str, advice: str = "") -> None:
    """Raises ``MemoryError`` when ``what`` would take more than this machine's memory
    (``advice``, if given, says what to do instead)."""
    available = memory_bytes()
    if available is not None and needed > available:
        raise MemoryError(f"{what} would take {needed / 2**30:,.1f} GiB, more than this "
                          f"machine's {available / 2**30:,.1f} GiB of memory"
                          + (f": {advice}" if advice else ""))


#: How messages say why a value that must be concrete is not (see ``is_traced``).
TRACED_HERE = ("it is traced here (inside the caller's jit, vmap or grad: its value is not "
               "known yet)")


def check_static(value, name: str, kind: str = "a concrete Python int") -> None:
    """Refuses a traced ``value`` that fixes the compiled program (a step count, a shape, a
    switch): it must be known when the program is built, so it cannot be the caller's
    tracer."""
    if is_traced(value):
        raise TypeError(f"{name} is static ({kind}: it fixes the compiled program), but "
                        f"{TRACED_HERE}: give it as a plain value from outside the "
                        "transformation (e.g. jax.jit(f, static_argnames=...))")


def check_integer(value, name: str) -> int:
    """An integer: a Python, NumPy or JAX integer, or a 0-d integer array (never a float,
    however whole, nor a bool), concrete.

    Example:
      >>> check_integer(np.int64(3), "index")
      3
    """
    check_static(value, name)
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    return int(value)


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Checks an integer argument such as num_steps against its smallest allowed value."""
    value = check_integer(value, name)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_index(index, name: str = "index") -> tuple[int, ...]:
    """A grid index as a tuple of ints: one integer per axis (a tuple, a list or a 1-D
    integer array), or one integer alone for the first axis, such as ``np.argmin``
    returns; each as ``check_integer`` takes it.

    Example:
      >>> check_index(np.argmin([3.0, 1.0])), check_index((np.int64(1), jax.numpy.int32(0)))
      ((1,), (1, 0))
    """
    if is_traced(index):
        raise TypeError(f"{name} picks a run on the host, but {TRACED_HERE}: index the "
                        "result outside the transformation")
    if isinstance(index, tuple | list) or getattr(index, "ndim", 0) == 1:
        return tuple(check_integer(entry, f"{name}[{i}]") for i, entry in enumerate(index))
    return (check_integer(index, name),)


def check_bool(value, name: str) -> bool:
    """A switch: True or False (a NumPy bool or 0-d bool array will do), never a string or
    a number, whose truth would be taken silently (``"false"`` is true).

    Example:
      >>> check_bool(np.bool_(False), "reference")
      False
    """
    check_static(value, name, "True or False")
    if not isinstance(value, bool) and np.ndim(value) == 0 and \
            getattr(value, "dtype", None) == np.bool_:
        value = bool(value)
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return value


def check_mapping(value, name: str, example: str):
    """A mapping of names to values (a dict), or None for none; ``example`` shows one."""
    if value is not None and not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping of names to values (a dict, e.g. "
                        f"{example}), got {type(value).__name__} {value!r}")
    return value


def check_choice(value, name: str, choices: Sequence[str]) -> str:
    """One of ``choices``, by name: a string (TypeError) among them (ValueError)."""
    if not isinstance(value, str) or value not in choices:
        error = ValueError if isinstance(value, str) else TypeError
        raise error(f"{name} must be one of {', '.join(choices)}, got "
                    f"{'' if isinstance(value, str) else type(value).__name__ + ' '}{value!r}")
    return value


def _traced_scalar(value, name: str):
    value = _check_traced(jax.numpy.asarray(value), name)
    if value.ndim != 0:
        raise ValueError(f"{name} must be a single number, got shape {value.shape}")
    return value


def check_seed(seed, name: str = "seed") -> int:
    """A seed is a non-negative integer below 2**32.

    Example:
      >>> check_seed(7)
      7
    """
    if is_traced(seed):
        raise TypeError(f"{name} must be concrete (not traced): {TRACED_HERE}; to run "
                        "several seeds as one vmapped program, give them as a list: "
                        "sweep(seeds=[...]) or grid_sweep(grid={'seed': [...]})")
    seed = check_positive_int(seed, name, minimum=0)
    if seed >= 2**32:
        raise ValueError(f"{name} must be < 2**32, got {seed}")
    return seed


def check_non_negative(value, name: str):
    """Checks a finite number >= 0 (a tolerance, a scale); a traced scalar passes unchecked."""
    if is_traced(value):
        return _traced_scalar(value, name)
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return value


# jaxgd/ (not inputs/), with its separator: a file jaxgd_demo.py beside it is the caller's.
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def warn(message: str, category: type[Warning] = RuntimeWarning) -> None:
    """Warns with the caller's line: the first frame outside jaxgd, however deep the call."""
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def warn_unaligned(X, y) -> None:
    """Warns where a table ``X`` and a column ``y`` both have an index (pandas) and the
    indexes differ: jaxgd reads their numbers, so y's rows are matched to X's by position,
    where pandas would align them by label. A length mismatch is left to the data checks,
    which refuse it.

    Example:
      >>> class Indexed:
      ...     def __init__(self, labels, **names):
      ...         self.index = Labels(labels)
      ...         self.__dict__.update(names)
      ...     def __array__(self, dtype=None, copy=None):
      ...         return np.zeros((len(self.index), 1))
      >>> class Labels(list):
      ...     def equals(self, other):
      ...         return list(self) == list(other)
      >>> import warnings
      >>> with warnings.catch_warnings(record=True) as caught:
      ...     warnings.simplefilter("always")
      ...     warn_unaligned(Indexed([0, 1], columns=["a"]), Indexed([1, 0], name="b"))
      >>> str(caught[0].message)[:35]
      "y's index differs from X's: y's row"
    """
    index_x, index_y = getattr(X, "index", None), getattr(y, "index", None)
    if not (frames.is_table(X) and frames.is_column(y) and hasattr(index_x, "equals")
            and hasattr(index_y, "equals")):
        return  # arrays (and anything without labels) have only positions
    if len(index_x) != len(index_y) or index_x.equals(index_y):
        return
    warn("y's index differs from X's: y's rows are matched to X's rows by position, not "
         "by index label (pandas would align them by label); align them first if that is "
         "not what you mean, e.g. y.loc[X.index], or give y.to_numpy()", UserWarning)
