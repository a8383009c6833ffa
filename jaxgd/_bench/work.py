"""The work model: what each engine must compute and move per step, for K runs at once.

Each measured time is set beside the machine's limits (``jaxgd._bench.machine``) through
this model: the roofline ``limit_seconds`` is the most that flops or bytes allow.
"""

from __future__ import annotations


def flops_per_step(engine: str, n: int, d: int, K: int) -> int:
    """Floating-point operations of one step of K runs (forward and backward pass).

    ``direct`` multiplies the ``(n, d+1)`` design matrix by the ``(d+1, K)`` parameters and
    back (``2·n·(d+1)·K`` each way); ``gram`` does the same with the ``(d+1, d+1)`` moment
    matrix instead of the rows. Elementwise work (residuals, squares) is O(n·K) and left out.
    ``eigen`` has no product: per coordinate and run a difference, three products and a sum
    for the loss and its gradient, and a multiply-add for the update, ``6·(d+1)·K``.

    Example:
      >>> flops_per_step("direct", n=10, d=2, K=5), flops_per_step("gram", n=10, d=2, K=5)
      (600, 180)
      >>> flops_per_step("eigen", n=10, d=2, K=5)
      90
    """
    width = d + 1
    if engine == "direct":
        return 4 * n * width * K
    if engine == "gram":
        return 4 * width * width * K
    if engine == "eigen":
        return 6 * width * K
    raise ValueError(f"unknown engine {engine!r}: direct, gram or eigen")


def bytes_per_step(engine: str, n: int, d: int, K: int, itemsize: int = 4) -> int:
    """Bytes one step of K runs must move at least, if nothing stays in cache.

    ``direct`` reads X twice (forward and backward) and y once, and writes and reads the
    ``(n, K)`` residuals; ``gram`` reads the ``(d+1)²`` moments and reads and writes the
    ``(d+1, K)`` parameters; ``eigen`` reads 2·(d+1) constants (curvatures and optimum)
    instead of the moments.

    Example:
      >>> bytes_per_step("direct", n=10, d=2, K=5, itemsize=4)
      600
    """
    if engine == "direct":
        return itemsize * (2 * n * d + n + 2 * n * K)
    if engine == "gram":
        return itemsize * ((d + 1) ** 2 + 2 * (d + 1) * K)
    if engine == "eigen":
        return itemsize * (2 * (d + 1) + 2 * (d + 1) * K)
    raise ValueError(f"unknown engine {engine!r}: direct, gram or eigen")


def setup_flops(engine: str, n: int, d: int) -> int:
    """Work done once per sweep: the moments, ``2·n·(d+1)²`` (gram and eigen; the eigen
    engine's (d+1)³ eigendecomposition is left out); direct none."""
    return 2 * n * (d + 1) ** 2 if engine in ("gram", "eigen") else 0


def work(engine: str, n: int, d: int, K: int, T: int, itemsize: int = 4) -> dict[str, int]:
    """The whole run's work: flops and bytes for T steps plus the one-off setup."""
    return {
        "flops_per_step": flops_per_step(engine, n, d, K),
        "bytes_per_step": bytes_per_step(engine, n, d, K, itemsize),
        "setup_flops": setup_flops(engine, n, d),
        "flops": flops_per_step(engine, n, d, K) * T + setup_flops(engine, n, d),
        "bytes": bytes_per_step(engine, n, d, K, itemsize) * T,
    }


def limit_seconds(total_work: dict[str, int], peak_gflops: float, peak_gbs: float) -> float:
    """The roofline: the run can go no faster than its flops or its bytes allow."""
    return max(total_work["flops"] / (peak_gflops * 1e9), total_work["bytes"] / (peak_gbs * 1e9))
