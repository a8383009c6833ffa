"""From a user's call to one compiled program: host-side preparation, held-out data and k
folds, the run core shared by fit, sweep and grid_sweep, mini-batches streamed from files, and
placement on devices.
"""
