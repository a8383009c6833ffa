"""When a run has converged (the loss stopped falling) or diverged (the loss blew up).

The monitor is a small pytree updated once per step inside the compiled loop, so every run of
a vmapped sweep carries its own verdict and no run can disturb another.

Converged: the loss changed by at most ``tol`` of itself per step, up or down, for
``patience`` steps in a row; ``converged_step`` is the first step of that flat stretch.
"Per step" is on average over the stretch: from its first step a (the anchor), each step t
of it has ``|L(a) − L(t)| <= (t − a)·tol·|L(a)|`` (plus the resolution below), and a step
that breaks it anchors the next stretch. For a loss whose fall slows smoothly that is the
same verdict at the same step as ``patience`` per-step tests (the first step is one), but
it does not hang on the last ulp: near tol a float32 loss of about 10 falls ~14 of its
ulps a step, rounded to whole ulps, and the direct engine's sum of n squares wobbles by a
couple more, so a per-step test passed and failed at random for dozens of steps while the
fall crossed tol, at other steps in each engine (on standardized Auto MPG the direct
engine converged up to 33 steps after gram and eigen). The change since the anchor carries
the rounding of its two ends only, however many steps it spans.
A crawling run is not converged: with the course's tiny learning rate 1.1e-5 on its seven
cars the loss still falls about 5e-4 of itself per step, hundreds of times ``tol``'s default
of 1e-6, so the run keeps going.
Lower ``tol`` for runs that crawl more slowly still. A loss rising by more than ``tol`` of
itself per step is not flat either.

Stalled: flat is not enough where the optimum's loss L* is known (``optimum``; jaxgd passes
the float64 least-squares or ridge optimum whenever the data are concrete). A run whose loss
is flat but still more than ``STALL_RATIO``·tol of itself above L* (10⁻³ at the default tol)
has stopped falling because its steps are too small (a tiny learning rate, or a crawl along
a flat direction of badly conditioned features, or steps below an ulp of parameters as large
as float32 targets of 10⁷), not because more steps could not lower it: it is not
converged. ``converged_step`` is then the first step of a stretch of ``patience`` steps that
are flat *and* near L*; a run that ends flat but far from L* is ``stalled``.

Where the loss cannot tell, the parameters can: a float32 exact fit (L* = 0) frozen a few
ulps from the optimum reads 2-4·h² (below), as high as raw timestamps frozen 10⁶ ulps of
their weight away. So where jaxgd also knows the optimum's parameters θ* (the host's
float64 least-squares or ridge solution), a run whose loss has been flat for ``patience``
steps at its end (by the flatness test of converged, near L* or not) and whose final
parameters each lie within ``PARAM_ULPS``·eps of θ*'s (``at_optimum``) has converged, from
the first step of that flat stretch (``final_verdicts``). It is judged at the end, from the
final parameters alone (mapping each step's coordinates back to weights would cost the
eigen engine O(d²) a step instead of O(d)), so such a run runs all its steps. jaxgd gives
θ* only for runs whose loss cannot tell (``loss_tells_optimum``, decided on the host before
the program is built: L* below what the dtype resolves, as in exact fits): where it can, a
run at θ* reads near L* and the loss's verdict is the whole truth, and the loop does not
track the stretch by flatness alone (``init_monitor``'s ``level``), which costs every run
every step.

What the dtype resolves of the loss near L*, and nothing sized from the start, widens both
tests (so that each engine judges the same run alike, float32 as float64 would, down to its
resolution):

- a change of ``STEP_ULPS`` ulps of the loss is flat whatever ``tol`` (in float32 a ``tol``
  below ~2.4e-7 acts as that on a single step): the loss is rounded to ulps, and the direct
  engine's sum of n squares wobbles by a couple more; allowed once per comparison with the
  anchor, so over ``patience`` steps it adds 1/``patience`` as much to each step's ``tol``;
- the engine's ``noise`` (``jaxgd.engines.engine``): h² = (d+1)·(eps/2)²·mean(y²), the loss of
  residuals each off by d + 1 roundings of half an ulp of a target (a prediction sums d + 1
  terms, and each parameter is held to its dtype): how far above L* a run as close as the
  dtype allows can read. Targets of 10⁷ with noise of std 1 in float32: h² = 0.71, against
  an L* of 1.05; such a run converges within 0.71 + 10⁻³·L* of L*, and one that freezes
  16-24·L* above (a learning rate whose steps on the bias fall under half its ulp of 1) is
  stalled. Each step the direct engine rounds each residual anew, by up to u = (eps/2)·|y|
  at its last sum, which moves its loss L by ±2u·√(L/n): that much more is allowed it
  (``noise`` a pair ``(h², 2u/√n)``), as ``RESOLUTION_ULPS`` ulps of L* are to every engine
  in the near-L* test (the float32 loss of float64 data's optimum).

The engines' noise also counts 4 float64 ulps of var(y) (``MOMENT_ULPS``), to which L*
itself is known: the moment engines' L* is var(y) − 2sᵀw* + w*ᵀΣw*, whose terms cancel, and
their loss never reads below it (a float64 exact fit read 4.4e-16, an ulp of its var(y),
where the rows give 7e-32; it was "stalled" there, and the direct engine, falling on to
1e-31, converged 26 steps later). So an exact fit (L* = 0) is flat once its loss is within
that and the h² of its data of L*, in every engine. Where the caller gives
no ``noise`` (0, as ``descend`` does by default), 16·eps²·loss₀ stands in for h²: the data
behind a bare loss function are unknown.

Where float32 engines still part by more than ``patience`` steps, each one's step is its own
run's truth, and narrowing it would blind an engine or change its losses. On a slow tail the
loss's relative fall per step shrinks by only 2·lr·λmin a step (0.11-0.19% on the course's
seven raw cars, condition number 512, at rates 0.01-0.017), so a flatness budget larger by a
fraction f is met about ln(1 + f)/(2·lr·λmin) steps earlier: the direct engine's allowance for its
residuals' rounding, 2u·√(L/n) ≈ 0.65·tol·L there (6.5% of a 10-step stretch's tol), puts it
before gram and eigen by 41-63 steps in 5,400-9,000 at rates 0.01-0.017 (4-43 at
0.023-0.068; float64 converges 10-77 steps after it). With targets of ~1000 (one feature,
100 rows, L* = 0.0091, lr 0.01), that allowance is 125·tol·L: the direct engine cannot see
its loss fall by less (it says flat at step 689, where float64 falls 26·tol a step); the
eigen engine's coordinates stop moving at 709 (a step on the bias direction, an ulp of 6e-5
at 1000, rounds to nothing: its loss is constant from there); gram, whose loss is taken
about the optimum and resolves ~h² = 0.8·tol·L, says 755; float64 781. Equal steps would
need the moment engines to allow a noise they do not have (and the rows' count n, which
their data do not carry), or the direct engine to compute other losses (targets centred on
the host).

Diverged: the loss is NaN or infinite, or exceeds ``divergence_factor`` (default 1e4) times
the loss at step 0. Gradient descent on a quadratic below the stable learning rate never
rises above its starting loss, so crossing that multiple means the run is blowing up. It
never rises at all, in fact: each step shrinks the error along every eigendirection. So for
plain gradient descent (``monotone``) a loss that rises by more than ``tol`` of itself for
``patience`` steps in a row, to above its starting loss, means a learning rate above the
stability limit 2/λmax: the run is diverging, however slowly it grows, and is flagged at
the end of that stretch. (Rising above the start keeps float32 rounding wobbles near the
optimum, which can rise a few steps in a row by chance, from counting.) Momentum, Nesterov
and Adam may rise for a while and recover. But where jaxgd knows a run's constant learning
rate lies above its optimizer's exact stability limit on the data (``unstable``: sgd,
momentum and Nesterov, ``jaxgd.theory.stability.limit_factor``), a loss grown past its start
means the unstable direction has taken over: diverging, whatever the optimizer.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_TOL = 1e-6
DEFAULT_PATIENCE = 10
DEFAULT_DIVERGENCE_FACTOR = 1e4
#: Ulps of L* by which a loss computed in the run's dtype may lie off the float64 L*.
RESOLUTION_ULPS = 16
#: Ulps of the loss by which a step's change may be off: the loss is rounded to ulps, and
#: the direct engine's sum of n squares wobbles by up to ~2 of them (2.15 measured on the
#: diabetes data, 442 rows).
STEP_ULPS = 2
#: A flat run more than this many ``tol`` of its loss above the optimum is stalled.
STALL_RATIO = 1e3
#: A flat run whose parameters all lie within this many eps of the float64 optimum's (each
#: of the larger of its own size and the largest weight's) has converged, whatever its loss
#: reads (``at_optimum``). Float32 exact fits (16 of them, d = 1-5) froze within 13.4 such
#: eps of θ* at rates 0.1-1 times the fastest (66 eps of a weight's own size for a weight of
#: 0.04 beside weights of ~1), 10-50 eps at 0.03 times it (steps too small: a larger rate
#: gets closer); float32 runs on raw timestamps and on targets of 10⁷ that stall far above
#: L* do so 3·10⁵-1.6·10⁶ eps of their weight away (their bias 3-5 ulps). As
#: ``RESOLUTION_ULPS`` is for the loss.
PARAM_ULPS = 16
#: The traced inputs that give a run the optimum's weight and bias (``at_optimum``).
OPTIMUM_INPUTS = ("optimum_weight", "optimum_bias")


class Monitor(NamedTuple):
    """Per-run convergence bookkeeping carried through the descent loop.

    Attributes:
      previous_loss: the loss at the previous step (inf before step 0).
      initial_loss: the loss at step 0 (inf before step 0).
      flat_steps: how many steps in a row the loss has been flat.
      converged_step: first step of the flat stretch that proved convergence, -1 if none yet.
      diverged_step: step at which the loss blew up, -1 if it has not.
      settled_steps: how many steps the loss has been flat and near the optimum since the
        stretch's first step (the anchor).
      rising_steps: how many steps in a row the loss has risen.
      anchor_loss: the loss at the first step of that stretch (inf before step 0).
      level_steps, level_anchor: the same stretch judged by flatness alone, near the
        optimum or not (``settled_steps`` and ``anchor_loss`` without the near-L* test):
        where it began, for a run found at the optimum by its parameters at the end
        (``final_verdicts``). None where nobody asked (``init_monitor``'s ``level``): the
        loop then carries and updates neither.
    """

    previous_loss: jax.Array
    initial_loss: jax.Array
    flat_steps: jax.Array
    converged_step: jax.Array
    diverged_step: jax.Array
    settled_steps: jax.Array
    rising_steps: jax.Array
    anchor_loss: jax.Array
    level_steps: jax.Array | None
    level_anchor: jax.Array | None

    @property
    def converged(self) -> jax.Array:
        return self.converged_step >= 0

    @property
    def diverged(self) -> jax.Array:
        return self.diverged_step >= 0

    def stalled(self, patience: int) -> jax.Array:
        """Flat for ``patience`` steps but not converged: too far above the optimum."""
        return (self.flat_steps >= patience) & ~self.converged & ~self.diverged


def init_monitor(dtype=jnp.float32, initial_loss=None, level: bool = False) -> Monitor:
    """A monitor before step 0.

    Args:
      dtype: the loss's float dtype.
      initial_loss: the loss that divergence is measured against; the loss at step 0 if
        None. Mini-batch SGD passes the full-data loss here, since its first batch's loss
        may be near 0 by chance.
      level: also track the flat stretch by flatness alone (``level_steps``), which only
        ``final_verdicts`` reads, for a run judged by its final parameters too; off, those
        fields are None and cost the loop nothing (two carried values and a dozen
        operations a step, ~10 ms of 8,192 runs x 1,000 steps on a CPU).

    Example:
      >>> int(init_monitor().converged_step)
      -1
    """
    inf = jnp.asarray(jnp.inf, dtype)
    start = inf if initial_loss is None else jnp.asarray(initial_loss, dtype)
    minus_one, zero = jnp.asarray(-1, jnp.int32), jnp.asarray(0, jnp.int32)
    return Monitor(inf, start, zero, minus_one, minus_one, zero, zero, inf,
                   *((zero, inf) if level else (None, None)))


def update_monitor(
    monitor: Monitor,
    loss: jax.Array,
    step: jax.Array,
    tol: float = DEFAULT_TOL,
    patience: int = DEFAULT_PATIENCE,
    divergence_factor: float = DEFAULT_DIVERGENCE_FACTOR,
    noise=0.0,
    optimum=jnp.nan,
    monotone: bool = False,
    unstable=False,
) -> Monitor:
    """Folds the loss of step ``step`` into the monitor; ``noise`` is the loss's absolute
    rounding floor near the optimum (changes within it are flat, and a loss within it of
    ``optimum`` is near), or a pair ``(floor, spread)`` whose floor grows by spread·√loss
    (see above); ``optimum`` is the lowest loss there is (NaN if unknown), ``monotone``
    whether a stable run's loss can never rise (plain gradient descent), ``unstable``
    whether the run is known to be above its optimizer's stability limit.

    Example:
      >>> m = init_monitor()
      >>> for t, loss in enumerate([4.0, 2.0, 2.0, 2.0]):
      ...     m = update_monitor(m, jnp.float32(loss), t, patience=2)
      >>> int(m.converged_step), bool(m.diverged)
      (1, False)
    """
    step = jnp.asarray(step, jnp.int32)
    given = jnp.isfinite(monitor.initial_loss)
    initial_loss = jnp.where((step == 0) & ~given, loss, monitor.initial_loss)
    eps = jnp.finfo(loss.dtype).eps
    # What the dtype resolves of the loss near the optimum (see above): the data's rounding
    # floor, and a change of STEP_ULPS ulps of the loss.
    noise, spread = noise if isinstance(noise, tuple) else (noise, None)

    def spread_of(value):  # spread·√value; nothing to compute without a spread (not the
        # direct engine: three square roots a step, each a pass over the runs of its own)
        return 0.0 if spread is None else spread * jnp.sqrt(value)

    noise = jnp.asarray(noise, loss.dtype)
    floor = jnp.where(noise > 0, noise, RESOLUTION_ULPS * eps * eps * jnp.abs(initial_loss))
    previous = jnp.abs(monitor.previous_loss)
    allowed = (tol + STEP_ULPS * eps) * previous + floor + spread_of(previous)
    rising = (step > 0) & (loss - monitor.previous_loss > allowed)
    rising_steps = jnp.where(rising, monitor.rising_steps + 1, 0)
    blew_up = ~jnp.isfinite(loss) | (loss > divergence_factor * jnp.abs(initial_loss))
    above_start = loss > jnp.abs(initial_loss) * (1 + tol) + floor
    if monotone:  # plain gradient descent rises only above its stability limit
        blew_up |= (rising_steps >= patience) & above_start
    # Above the limit, some error component grows without bound: once the loss has grown
    # past its start, the run is diverging, however slowly.
    blew_up |= unstable & above_start
    diverged_step = jnp.where(
        (monitor.diverged_step < 0) & blew_up, step, monitor.diverged_step
    )
    change = jnp.abs(monitor.previous_loss - loss)
    flat = (step > 0) & (change <= allowed)
    flat_steps = jnp.where(flat, monitor.flat_steps + 1, 0)
    # Far from a known optimum, a flat loss means steps too small to matter (NaN: unknown).
    far = loss - optimum > (STALL_RATIO * tol * jnp.abs(loss) + RESOLUTION_ULPS * eps
                            * jnp.abs(optimum) + floor + spread_of(jnp.abs(loss)))
    # Converged: flat on average since the stretch's anchor, whose loss carries the rounding
    # of one end only however long the stretch (see above); a step that breaks it anchors
    # the next stretch.
    def since_anchor(steps, anchor_loss):  # flat on average since the anchor
        since = (steps + 1).astype(loss.dtype)
        anchor = jnp.abs(anchor_loss)
        budget = (since * tol + STEP_ULPS * eps) * anchor + floor + spread_of(anchor)
        return (step > 0) & (jnp.abs(anchor_loss - loss) <= budget)

    settled = since_anchor(monitor.settled_steps, monitor.anchor_loss) & ~far
    settled_steps = jnp.where(settled, monitor.settled_steps + 1, 0)
    anchor_loss = jnp.where(settled, monitor.anchor_loss, loss)
    level_steps, level_anchor = None, None
    if monitor.level_steps is not None:  # asked for (init_monitor's level)
        level = since_anchor(monitor.level_steps, monitor.level_anchor)
        level_steps = jnp.where(level, monitor.level_steps + 1, 0)
        level_anchor = jnp.where(level, monitor.level_anchor, loss)
    newly_converged = (
        (settled_steps >= patience) & (monitor.converged_step < 0) & (diverged_step < 0)
    )
    converged_step = jnp.where(newly_converged, step - patience, monitor.converged_step)
    return Monitor(loss, initial_loss, flat_steps, converged_step, diverged_step,
                   settled_steps, rising_steps, anchor_loss, level_steps, level_anchor)


def at_optimum(params, optimum) -> jax.Array:
    """Whether ``params`` (weight and bias) lie within ``PARAM_ULPS``·eps of the optimum's
    ``optimum`` (the float64 least-squares or ridge solution; NaN: unknown, never near),
    each parameter measured against the larger of its own size and the largest weight's:
    the normal equations pass each parameter's rounding on to the others, so a weight of
    0.04 beside weights of ~1 freezes dozens of its own ulps away but within a few of theirs.
    Leading (run) axes are kept; eps is that of ``params``' dtype.

    Example:
      >>> from jaxgd.core.params import LinearParams
      >>> best = LinearParams(jnp.array([1.0, 2.0]), jnp.float32(3.0))
      >>> ulp = float(jnp.finfo(jnp.float32).eps)
      >>> near = LinearParams(jnp.array([1.0 + 4 * ulp, 2.0]), jnp.float32(3.0))
      >>> off = LinearParams(jnp.array([1.001, 2.0]), jnp.float32(3.0))
      >>> bool(at_optimum(near, best)), bool(at_optimum(off, best))
      (True, False)
    """
    dtype = jnp.result_type(params.weight)
    theta = jnp.concatenate([params.weight, jnp.asarray(params.bias, dtype)[..., None]], -1)
    best = jnp.concatenate([jnp.asarray(optimum.weight, dtype),
                            jnp.asarray(optimum.bias, dtype)[..., None]], -1)
    scale = jnp.maximum(jnp.abs(best), jnp.max(jnp.abs(best[..., :-1]), -1, keepdims=True))
    allowed = PARAM_ULPS * jnp.finfo(dtype).eps * scale
    return jnp.all(jnp.abs(theta - best) <= allowed, axis=-1)


#: How many times over 16 ulps of L* (``RESOLUTION_ULPS``) must exceed what a run at the
#: optimum's parameters can read above L* for its loss to tell it from one short of it
#: (``loss_tells_optimum``).
TELLS_MARGIN = 4


def loss_tells_optimum(optimal_loss, optimum, curvature, dtype) -> np.ndarray:
    """Whether the loss alone judges a run as well as its parameters could, on the host
    before the program is built: the float64 L* (``optimal_loss``) lies so far above what
    the run's ``dtype`` resolves of it that a run within ``PARAM_ULPS`` of the optimum's
    parameters (``optimum``, rows ``[weight, bias]``) reads within ``RESOLUTION_ULPS`` ulps
    of L*, ``TELLS_MARGIN`` times over: near by the loss, where ``at_optimum`` adds nothing.
    What such a run can read above L*: its offset δ (each parameter ``PARAM_ULPS``·eps of
    the larger of its own size and the largest weight's) costs at most ½λmax·|δ|²
    (``curvature``: the loss's largest Hessian eigenvalue), and its targets' rounding
    h² = (d+1)·(eps/2)²·mean(y²), with mean(y²) at most 2·(L* + ½λmax·|θ*|²). False where
    L* is below that (exact fits, L* = 0; targets of 10⁷ in float32) or unknown (NaN):
    there the parameters judge a run flat at its end too (``final_verdicts``), and the loop
    tracks the flat stretch for them.

    Example:
      >>> rows = np.array([[2.0, 1.0]])  # weight 2, bias 1
      >>> loss_tells_optimum(np.array([0.5, 1e-20]), rows, 2.0, np.float32).tolist()
      [True, False]
    """
    eps = float(np.finfo(dtype).eps)
    rows = np.asarray(optimum, np.float64)
    loss, half = np.asarray(optimal_loss, np.float64), 0.5 * np.asarray(curvature, np.float64)
    scale = np.maximum(np.abs(rows), np.max(np.abs(rows[..., :-1]), -1, keepdims=True))
    offset = half * np.sum((PARAM_ULPS * eps * scale) ** 2, -1)
    rounding = rows.shape[-1] * (eps / 2) ** 2 * 2 * (loss + half * np.sum(rows * rows, -1))
    return RESOLUTION_ULPS * eps * loss > TELLS_MARGIN * (offset + rounding)


def final_verdicts(converged_step, diverged, stalled, level_steps, patience: int, last_step,
                   found_at_optimum):
    """A run's ``(converged_step, stalled)`` at its end: as the monitor judged it, except
    that a run whose loss has been flat (``level_steps``, by the converged rule's flatness)
    for ``patience`` steps and whose final parameters are ``found_at_optimum``
    (``at_optimum``) has converged, from the first step of that flat stretch (its steps up
    to ``last_step``, the last one judged), even where its loss reads further above L* than
    the allowances admit: a float32 exact fit (L* = 0) frozen a few ulps from θ* reads 2-4·h²,
    as high as raw timestamps frozen ~10⁶ ulps of their weight away. Such a run is judged
    at its end, so it runs all its steps even with early stopping.

    Example:
      >>> step, stalled = final_verdicts(jnp.int32(-1), False, True, jnp.int32(30), 10, 99,
      ...                                True)
      >>> int(step), bool(stalled)
      (69, False)
    """
    diverged, stalled = jnp.asarray(diverged, bool), jnp.asarray(stalled, bool)
    found = (jnp.asarray(found_at_optimum, bool) & (converged_step < 0) & ~diverged
             & (level_steps >= patience))
    return jnp.where(found, last_step - level_steps, converged_step), stalled & ~found


def diverged_as_nan(values, diverged):
    """A run's held-out numbers as reported: NaN where the run diverged. The one rule for
    ``final_validation_loss`` (in the descent's finish, inside the compiled program) and the
    validation side of ``errors`` (on the host): a diverged run's parameters are frozen
    where it blew up, so their held-out error is finite but estimates nothing.

    Example:
      >>> diverged_as_nan(np.array([0.5, 2.0]), np.array([False, True])).tolist()
      [0.5, nan]
    """
    # On the host (float64 errors) in NumPy; in JAX for device values or a traced verdict.
    xp = jnp if isinstance(values, jax.Array) or isinstance(diverged, jax.core.Tracer) else np
    return xp.where(diverged, xp.nan, values)


def gap_to_optimum(final_loss, optimal_loss) -> np.ndarray:
    """``final_loss - optimal_loss`` in float64, with a gap below 0 by rounding reported as 0.

    No run can end below the optimum's loss L*, but a loss computed in float32 can round
    below the float64 L* by a few ulps of L*. A gap below 0 by at most
    ``RESOLUTION_ULPS``·eps·|L*| (eps of ``final_loss``'s dtype: what it resolves at L*) is
    such a rounding and is 0; one further below is a bug and stays negative, to be seen.
    NaN stays NaN. One rule for ``Result.gap`` and the command line's ``gap_to_optimum``.

    Args:
      final_loss: the runs' final losses, in the dtype they were computed in.
      optimal_loss: L*, the float64 optimum's loss (broadcasts against ``final_loss``).

    Returns:
      The gaps, float64 (a NumPy scalar for one run).

    Example:
      >>> below = np.float32(0.5) - np.float32(0.5) * np.finfo(np.float32).eps  # 1 ulp
      >>> float(gap_to_optimum(below, 0.5)), float(gap_to_optimum(np.float64(0.4), 0.5))
      (0.0, -0.09999999999999998)
    """
    loss = np.asarray(final_loss)
    dtype = loss.dtype if jnp.issubdtype(loss.dtype, jnp.floating) else np.float64
    optimum = np.asarray(optimal_loss, np.float64)
    gap = loss.astype(np.float64) - optimum
    margin = RESOLUTION_ULPS * float(jnp.finfo(dtype).eps) * np.abs(optimum)
    return np.where((gap < 0) & (gap >= -margin), 0.0, gap)[()]
