"""Choosing hyperparameters: held-out data and k folds, search spaces and Sobol' points, early
exit in segments, and refinement by hypergradients.
"""
