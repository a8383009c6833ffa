"""The smallest useful job: a learning-rate sweep on Auto MPG (weight -> mpg), printed."""

from __future__ import annotations

import numpy as np

from jaxgd import datasets
from jaxgd.scaling import Standardizer, unstandardize_params
from jaxgd.stability import stability
from jaxgd.sweep import sweep


def main() -> int:
    """Sweeps learning rates on standardized car weight and prints what each run did."""
    data = datasets.auto_mpg(features=["weight"])
    scaler = Standardizer.fit(data.X)
    X = scaler.transform(data.X)
    limits = stability(X)
    rates = np.array([0.001, 0.01, 0.1, 0.5, 0.9, 1.1]) * limits.max_learning_rate
    result = sweep(X, data.y, learning_rates=rates, num_steps=1000)
    print(f"Auto MPG: {data.X.shape[0]} cars, weight (pounds) -> mpg; 1000 steps each")
    print(f"largest stable learning rate 2/λmax = {limits.max_learning_rate:.4g}")
    print(f"{'learning rate':>14} {'final loss':>12} {'converged at':>13} {'diverged':>9}")
    for i, rate in enumerate(rates):
        step = int(result.converged_step[i])
        print(f"{rate:14.4g} {float(result.final_loss[i]):12.6g} "
              f"{step if step >= 0 else '-':>13} {bool(result.diverged[i])!s:>9}")
    best = result.run(result.best())
    params = unstandardize_params(best.params, scaler)
    print(f"best run: mpg = {float(params.weight[0]) * 1000:.4f} per 1000 lb · weight "
          f"+ {float(params.bias):.4f}; MSE {float(best.final_loss):.6g} "
          f"(least squares: {result.optimal_loss:.6g})")
    return 0
