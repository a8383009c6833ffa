"""The same gradient descent as jaxgd, written the way users write it without jaxgd.

Plain full-batch gradient descent on the MSE from zeros, a constant learning rate, K learning
rates, T steps, the full ``(K, T)`` loss history kept:

- ``numpy_gd``: NumPy by hand, vectorized across learning rates, float64;
- ``torch_gd`` / ``torch_autograd_gd``: PyTorch eager on the CPU, float32, hand-written
  gradient / ``loss.backward()`` (None when torch is not installed);
- ``plain_jax_gd``: ``jax.jit(jax.vmap(run))``, ``run`` a ``lax.scan`` of ``optax.sgd``
  steps computing ``X @ w`` every step, float32;
- ``sklearn_sgd``: scikit-learn's ``SGDRegressor`` per learning rate, timed to within 1% of
  the least-squares loss (a different, per-sample algorithm; None without scikit-learn);
- ``jaxgd_sweep``: jaxgd itself (``jaxgd.sweep`` from zeros, every loss kept), with the
  engine that ran.

They live in ``jaxgd/_bench/baselines.py`` so that the installed ``jaxgd bench`` command has
them; this module names them for readers of the benchmarks folder. Run it to check them
against jaxgd on Auto MPG: ``python -m benchmarks.baselines``.
"""

from __future__ import annotations

from jaxgd._bench import (
    compare_histories,
    jaxgd_sweep,
    numpy_gd,
    plain_jax_gd,
    sklearn_sgd,
    torch_autograd_gd,
    torch_gd,
)

__all__ = ["jaxgd_sweep", "numpy_gd", "plain_jax_gd", "sklearn_sgd", "torch_autograd_gd",
           "torch_gd"]


def main() -> None:
    from jaxgd._bench import auto_mpg_problem

    problem = auto_mpg_problem()
    rates, steps = problem.learning_rates(16), 300
    reference, engine = jaxgd_sweep(problem.X32, problem.y32, rates, steps)
    print(f"jaxgd (engine {engine}) on Auto MPG, 16 rates × {steps} steps")
    for name, fn, float64 in (("numpy", numpy_gd, True), ("torch", torch_gd, False),
                              ("torch-autograd", torch_autograd_gd, False),
                              ("plain-jax", plain_jax_gd, False)):
        X, y = (problem.X, problem.y) if float64 else (problem.X32, problem.y32)
        history = fn(X, y, rates, steps)
        if history is None:
            print(f"{name:15} skipped: not installed")
            continue
        check = compare_histories(history, reference, rates, problem.max_learning_rate)
        print(f"{name:15} {'ok' if check['ok'] else 'MISMATCH'}: max relative difference "
              f"{check['max_rel_err']:.2e}")
    outcome = sklearn_sgd(problem.X, problem.y, rates[::4], problem.optimal_loss, 50)
    if outcome is not None:
        print(f"{'sklearn-sgd':15} reached 1% of the optimum for {int(outcome.reached.sum())}"
              f" of {outcome.reached.size} rates")


if __name__ == "__main__":
    main()
