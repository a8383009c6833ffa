"""From a user's call to one compiled program: one preparation pipeline (``problem``: the
``Problem`` that fit, the sweeps and refinement run), its host-side steps, held-out data and k
folds, the run core shared by fit, sweep and grid_sweep, mini-batches streamed from files, and
placement on devices.
"""
