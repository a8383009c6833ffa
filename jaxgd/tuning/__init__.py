"""Choosing hyperparameters: held-out data and k folds, search spaces and Sobol' points, early exit
in segments, refinement by hypergradients and the learning-rate range test.
"""
