"""Search spaces beyond full grids: ranges of hyperparameters, and points drawn from them.

A search space maps hyperparameter names to ranges, ``{"learning_rate": ("log", 1e-4, 1.0),
"b1": ("uniform", 0.5, 0.99)}``: "log" spreads points evenly in log(value) (learning rates,
l2, eps: what matters is the order of magnitude), "uniform" evenly in the value. A sampler
draws ``num_samples`` points of the unit cube — "sobol" (scrambled Sobol', ``jaxgd.tuning.sobol``:
even coverage, the default) or "random" (independent uniform draws) — from a seed, and each
coordinate is mapped onto its range. ``grid_sweep(sample=...)`` runs the points as one axis
of its grid (``jaxgd.api.grid``); the unit-cube coordinates are also where ``refine=`` moves
(``jaxgd.tuning.refinement``).

Any numeric hyperparameter ``grid_sweep`` takes in its grid may be sampled: the learning
rate, ``l2``, and the optimizer's and schedule's hyperparameters (``jaxgd.core.optimizers``).
Seeds are not sampled (they name draws, they are not a range: put them in ``grid=``), and
there are no integer ranges: every integer setting (step counts, batch size) fixes the
compiled program's shapes, so it cannot vary inside one program.

The points are drawn as NumPy arrays, and their size is checked from ``num_samples`` alone
before anything is drawn (``check_size``): 2**32 Sobol' points of two hyperparameters would
take 224 GiB, which is refused by name rather than met as a ``MemoryError`` deep in
the draw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxgd.core.optimizers import OptimizerSpec, check_hyperparameter
from jaxgd.core.record import SAMPLE_AXIS as SAMPLE_AXIS  # the drawn points' axis
from jaxgd.inputs.validation import (
    check_learning_rate,
    check_memory,
    check_non_negative,
    check_seed,
)
from jaxgd.tuning.sobol import BITS, MAX_DIMENSIONS, sobol

#: The ways to spread points over a range.
KINDS = ("log", "uniform")
#: The ways to draw points of the unit cube.
SAMPLERS = ("sobol", "random")
#: The most points a sampler can draw: Sobol' coordinates have ``sobol.BITS`` bits.
MAX_POINTS = {"sobol": 2**BITS, "random": None}
#: Peak bytes of a draw (measured with tracemalloc: 17 + 16 per hyperparameter for Sobol',
#: 16 per hyperparameter at random): per point (Sobol's point index, its Gray code, a bit
#: mask) and per point and hyperparameter (the coordinates, then the values).
DRAW_BYTES = 24
DRAW_BYTES_PER_NAME = 16


class Range(NamedTuple):
    """One hyperparameter's range: ``kind`` ("log" or "uniform"), ``low`` < ``high``."""

    kind: str
    low: float
    high: float

    def from_unit(self, u):
        """Maps u in [0, 1] onto the range (NumPy or JAX arrays; the inverse of ``to_unit``).

        Example:
          >>> round(Range("log", 1e-3, 1e-1).from_unit(0.5), 12)
          0.01
        """
        if self.kind == "log":
            return self.low * (self.high / self.low) ** u
        return self.low + u * (self.high - self.low)

    def to_unit(self, value):
        """Where ``value`` lies in the range, as a fraction in [0, 1] (traceable: JAX math).

        Example:
          >>> float(Range("uniform", 0.5, 1.0).to_unit(0.75))
          0.5
        """
        if self.kind == "log":
            return (jnp.log(value) - math.log(self.low)) / math.log(self.high / self.low)
        return (value - self.low) / (self.high - self.low)


def check_space(sample: Mapping, valid: tuple[str, ...] | None = None) -> dict[str, Range]:
    """Checks a search space: names (among ``valid`` when given), kinds and bounds.

    Raises:
      ValueError: naming the entry that is wrong.

    Example:
      >>> check_space({"learning_rate": ("log", 1e-4, 1.0)})
      {'learning_rate': Range(kind='log', low=0.0001, high=1.0)}
    """
    if not isinstance(sample, Mapping) or not sample:
        raise ValueError("sample must map at least one hyperparameter name to a range such "
                         "as ('log', 1e-4, 1.0)")
    if len(sample) > MAX_DIMENSIONS:
        raise ValueError(f"sample has {len(sample)} hyperparameters; at most "
                         f"{MAX_DIMENSIONS} are supported")
    space = {}
    for name, entry in sample.items():
        where = f"sample[{name!r}]"
        if name in ("seed", "batch_seed"):
            raise ValueError(f"{where}: seeds are not sampled from a range; put {name} in "
                             "grid= (a list of seeds) instead")
        if valid is not None and name not in valid:
            raise ValueError(f"{where}: unknown hyperparameter {name!r}; valid: "
                             f"{', '.join(valid)}")
        if isinstance(entry, str) or not hasattr(entry, "__len__") or len(entry) != 3:
            raise ValueError(f"{where} must be (kind, low, high), e.g. ('log', 1e-4, 1.0); "
                             f"got {entry!r}")
        kind, low, high = entry
        if kind not in KINDS:
            raise ValueError(f"{where}: unknown kind {kind!r}; valid: {', '.join(KINDS)}")
        try:
            low, high = float(low), float(high)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: low and high must be numbers, got {low!r} and "
                             f"{high!r}") from None
        if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
            raise ValueError(f"{where}: needs finite low < high, got low={low!r}, "
                             f"high={high!r}")
        if kind == "log" and low <= 0:
            raise ValueError(f"{where}: a log range needs low > 0, got low={low!r}")
        space[name] = Range(kind, low, high)
    return space


def check_ends(space: Mapping[str, Range], spec: OptimizerSpec) -> None:
    """Checks that both ends of every range are values its hyperparameter may take, by the
    hyperparameter's own rule (the learning rate's, l2's, or ``check_hyperparameter``'s).

    Both ends, closed: an upper end that the hyperparameter's range leaves open (b1 = 1)
    is refused too, although a draw from [0, 1) never lands on it exactly, because
    refinement (``jaxgd.tuning.refinement``) clips its unit coordinates to [0, 1] and so reaches
    ``high`` itself, and ``from_unit`` may round a draw just below 1 up to ``high``. Every
    hyperparameter's allowed values form one interval, so two good ends make every point
    between them good.

    Raises:
      ValueError: naming the entry, which end, and the values allowed.

    Example:
      >>> from jaxgd.core.optimizers import make_spec
      >>> try:
      ...     check_ends({"b1": Range("uniform", 0.5, 1.5)}, make_spec("adam"))
      ... except ValueError as error:
      ...     print(error)
      sample['b1']: high=1.5 is not a value b1 may take: b1 must be in [0, 1); bad value 1.5
    """
    for name, bounds in space.items():
        for end in ("low", "high"):
            value = getattr(bounds, end)
            try:
                if name == "learning_rate":
                    check_learning_rate(value)
                elif name == "l2":
                    check_non_negative(value, "l2")
                else:
                    check_hyperparameter(name, value, spec)
            except ValueError as error:
                raise ValueError(f"sample[{name!r}]: {end}={value!r} is not a value {name} "
                                 f"may take: {error}") from None


def draw(sample: Mapping, num_samples: int, sampler: str = "sobol",
         seed: int = 0) -> dict[str, np.ndarray]:
    """``num_samples`` points of a search space, as one float64 array per name.

    Args:
      sample: name -> (kind, low, high), kind "log" or "uniform" (see ``check_space``).
      num_samples: how many points (a power of two keeps Sobol' points balanced).
      sampler: "sobol" (scrambled, seeded) or "random" (independent uniform, seeded).
      seed: the draw's seed; the same seed gives the same points.

    Returns:
      name -> ``(num_samples,)`` values, each within its range.

    Raises:
      ValueError: a bad space, count or sampler (see ``check_space``, ``check_size``).
      MemoryError: when the draw would not fit in memory, before anything is drawn.

    Example:
      >>> points = draw({"learning_rate": ("log", 1e-4, 1.0)}, 8, seed=0)
      >>> sorted(int(np.floor(np.log10(v))) for v in points["learning_rate"])
      [-4, -4, -3, -3, -2, -2, -1, -1]
    """
    space = check_space(sample)
    num_samples = check_size(num_samples, len(space), sampler)  # before anything is drawn
    unit = unit_points(len(space), num_samples, sampler, seed)
    return {name: np.asarray(r.from_unit(unit[:, j]), np.float64)
            for j, (name, r) in enumerate(space.items())}


def check_size(num_samples, dimensions: int, sampler: str = "sobol") -> int:
    """``num_samples`` checked, refused before anything is drawn when ``sampler`` cannot draw
    that many points or this machine could not hold the draw (``DRAW_BYTES``).

    Raises:
      ValueError: not a positive integer; more points than the sampler draws; an unknown
        sampler.
      MemoryError: naming num_samples, when the draw would not fit in memory.

    Example:
      >>> check_size(64, 2)
      64
    """
    num_samples = _check_count(num_samples, sampler)
    names = "hyperparameter" if dimensions == 1 else "hyperparameters"
    check_memory(num_samples * (DRAW_BYTES + DRAW_BYTES_PER_NAME * dimensions),
                 f"num_samples = {num_samples}: drawing {num_samples} points of {dimensions} "
                 f"{names}", "draw fewer points")
    return num_samples


def _check_count(num_samples, sampler: str) -> int:
    if isinstance(num_samples, bool) or not isinstance(num_samples, int | np.integer) or (
            num_samples < 1):
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}")
    most = MAX_POINTS[sampler]
    if most is not None and num_samples > most:
        raise ValueError(f"num_samples must be at most 2**{BITS} for the {sampler} sampler "
                         f"(its points have {BITS} bits), got {num_samples}")
    return int(num_samples)


def unit_points(dimensions: int, num_samples: int, sampler: str, seed: int) -> np.ndarray:
    """``(num_samples, dimensions)`` points of [0, 1)^dimensions from ``sampler``."""
    num_samples = _check_count(num_samples, sampler)
    seed = check_seed(seed, "sample_seed")
    if sampler == "sobol":
        return sobol(int(num_samples), dimensions, scramble=True, seed=seed)
    return np.random.default_rng(seed).random((int(num_samples), dimensions))
