"""The public entry points: ``fit`` (one run), ``sweep`` (learning rates and seeds),
``grid_sweep`` (any hyperparameters, searches and refinement) and ``lr_range`` (the learning-rate
range test), each one compiled program."""
