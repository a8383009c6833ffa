"""The core: the one compiled descent loop, its monitor and verdicts, optimizers, the linear model
and its parameters.

Nothing here imports an engine, a tuning or a data module: ``descend`` runs any pytree, any loss
and any optax optimizer on its own.
"""
