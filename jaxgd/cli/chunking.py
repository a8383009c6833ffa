"""How ``jaxgd run`` splits a sweep's learning rates into chunks (``chunk_size``).

A chunk is a unit of work and of checkpointing: one ``grid_sweep`` over some learning rates
and every other grid point of theirs, saved as soon as it is done, so a stopped run resumes
from its saved chunks (``jaxgd.cli.checkpoint``). Chunks that do not see each other give the
same results as one call because every run is computed on its own: except under successive
halving (``train.pruning = "halving"``), which ranks the runs still going against each other
at every rung. Ranked chunk by chunk, a run would be pruned or kept by which runs shared its
chunk. So a halving sweep runs as one chunk, exactly the library's ``grid_sweep`` (whose
segments batch the device calls by memory and rank every run at once), and a smaller
``--chunk-size`` is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jaxgd.cli.toml_text import ConfigError

if TYPE_CHECKING:
    from jaxgd.cli.config import Config

CHUNK_RUNS = 1024  # runs per chunk when the grid is larger than this and no size is given


def default_chunk_size(num_rates: int, num_seeds: int, runs: int = CHUNK_RUNS) -> int:
    """Learning rates per chunk: all of them for a grid of up to ``runs`` runs, else as many
    as make about ``runs`` runs with every seed (at least one). ``num_seeds`` counts the runs
    of each learning rate: seeds times the other grid points.

    Example:
      >>> default_chunk_size(7, 3), default_chunk_size(5000, 1), default_chunk_size(10, 2000)
      (7, 1024, 1)
    """
    if num_rates * num_seeds <= runs:
        return num_rates
    return max(1, runs // num_seeds)


def chunk_size(config: Config, asked: int | None, num_rates: int, per_rate: int) -> int:
    """Learning rates per chunk for this run: ``asked`` (``--chunk-size``, at most all of
    them), or ``default_chunk_size``; all of them under successive halving, which ranks the
    whole sweep at once.

    Args:
      config: the run (its ``train.pruning``).
      asked: learning rates per chunk asked for; None: the default.
      num_rates: the run's learning rates.
      per_rate: runs per learning rate (seeds × the other grid points × folds).

    Raises:
      ConfigError: for a size below 1, or below ``num_rates`` with ``train.pruning``.

    Example:
      >>> from jaxgd.cli.config import parse
      >>> config = parse("[optimizer]\\nlearning_rate = 0.1\\n")
      >>> chunk_size(config, None, 5000, 1), chunk_size(config, 9, 20, 1)
      (1024, 9)
      >>> halving = parse("[optimizer]\\nlearning_rate = 0.1\\n[train]\\npruning = 'halving'\\n")
      >>> chunk_size(halving, None, 5000, 1)
      5000
      >>> chunk_size(halving, 9, 20, 1)
      Traceback (most recent call last):
      ...
      jaxgd.cli.toml_text.ConfigError: --chunk-size 9: train.pruning = 'halving' ranks ...
    """
    if asked is not None and (isinstance(asked, bool) or not isinstance(asked, int)
                              or asked < 1):
        raise ConfigError(f"the chunk size must be an integer >= 1, got {asked!r}")
    if config.train.pruning is None:  # CHUNK_RUNS at call time
        return min(asked or default_chunk_size(num_rates, per_rate, CHUNK_RUNS), num_rates)
    if asked is not None and asked < num_rates:
        raise ConfigError(
            f"--chunk-size {asked}: train.pruning = {config.train.pruning!r} ranks the runs of "
            "the whole sweep against each other at every rung, so the sweep runs as one "
            f"chunk of all {num_rates} learning rates (the library batches its device calls "
            "by memory itself): leave --chunk-size out")
    return num_rates
