"""Choosing hyperparameters: search spaces and Sobol' points, early exit in segments, and
refinement by hypergradients (held-out data and k folds: ``jaxgd.pipeline.holdout``).
"""
