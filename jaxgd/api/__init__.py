"""The public entry points: ``fit`` (one run), ``sweep`` (learning rates and seeds) and
``grid_sweep`` (any hyperparameters, searches and refinement), each one compiled program."""
