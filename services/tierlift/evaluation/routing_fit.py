"""A workload's routing head, started from the shipped prior rather than from nothing.

The shipped classifier's routing head (`classifier/model/heads.npz`) already ranks prompts by
their form; a workload's judged prompts should correct it where that workload differs, not
relearn it. So the workload head is the shipped head plus a departure: logistic regression whose
logit is the shipped head's logit plus `departure · standardised form + shift`, with an L2
penalty `strength / 2 · |departure|²` (the shift, which only moves the base rate, is barely
penalised). A large strength keeps the shipped head (with the workload's base rate); a small
one lets the workload's own rows decide. The strength is chosen by stratified cross-validation on
the rows given to the fit and nothing else. With no rows the fit is the shipped head itself."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.model_selection import StratifiedKFold

from tierlift.classifier._model import LinearHead, load_heads

STRENGTHS = tuple(float(s) for s in np.logspace(-1, 4, 11))  # 0.1 .. 10,000, half a decade apart
FOLDS = 5
SHIFT_PENALTY = 1e-3  # keeps the shift finite on a fold whose labels are nearly all one verdict
MAX_STEPS = 50


@dataclass(frozen=True)
class Prior:
    """A linear routing head over the prompt's form: P(small model suffices) = 1 / (1 + exp(-(w·form + b)))."""

    weights: NDArray[np.float64]
    bias: float

    @classmethod
    def zero(cls, width: int) -> Prior:
        """No prior: the fit starts from nothing (a form of another width than the shipped head's)."""
        return cls(np.zeros(width), 0.0)

    @classmethod
    def from_head(cls, head: LinearHead) -> Prior:
        return cls(np.asarray(head.weights, dtype=np.float64)[:, 0].copy(), float(np.asarray(head.bias).ravel()[0]))


def shipped_prior(width: int, head: LinearHead | None = None) -> Prior | None:
    """The shipped classifier's routing head (or `head`) as a prior for forms of `width`
    features; None when its width differs (a classifier of another version)."""
    head = head if head is not None else load_heads()["routing"]
    if head.weights.ndim != 2 or head.weights.shape != (width, 1):
        return None
    return Prior.from_head(head)


def fit_toward(x: NDArray[np.float64], y: NDArray[np.bool_], prior: Prior, strength: float) -> Prior:
    """The penalised fit of the departure from `prior` on rows `x` (forms) with verdicts `y`,
    returned as a head on the raw forms. No rows: `prior` unchanged."""
    if len(x) == 0:
        return Prior(prior.weights.copy(), prior.bias)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    offset = x @ prior.weights + prior.bias
    target = y.astype(np.float64)

    zz = np.hstack([z, np.ones((len(z), 1))])
    penalty = np.append(np.full(x.shape[1], strength), SHIFT_PENALTY)

    def loss(theta: NDArray[np.float64]) -> float:
        logit = offset + zz @ theta
        return float((np.logaddexp(0, logit) - target * logit).sum() + penalty @ theta**2 / 2)

    # Newton's method with step halving on the penalised log loss (convex; one parameter a feature)
    theta = np.zeros(x.shape[1] + 1)
    current = loss(theta)
    for _ in range(MAX_STEPS):
        p = 0.5 * (1 + np.tanh((offset + zz @ theta) / 2))  # the logistic function, without overflow
        gradient = zz.T @ (p - target) + penalty * theta
        step = np.linalg.solve((zz * (p * (1 - p))[:, None]).T @ zz + np.diag(penalty), gradient)
        size = 1.0
        while (trial := loss(theta - size * step)) > current and size > 1e-6:
            size /= 2
        theta, improved, current = theta - size * step, current - trial, trial
        if improved < 1e-10 * (1 + abs(current)):
            break
    departure = theta[:-1] / scale
    return Prior(prior.weights + departure, float(prior.bias + theta[-1] - mean @ departure))


def _log_loss(head: Prior, x: NDArray[np.float64], y: NDArray[np.bool_]) -> float:
    logit = x @ head.weights + head.bias
    return float((np.logaddexp(0, logit) - y * logit).sum())


def choose_strength(x: NDArray[np.float64], y: NDArray[np.bool_], prior: Prior, seed: int = 0) -> float:
    """The strength of `STRENGTHS` with the lowest out-of-fold log loss over stratified folds of
    these rows (ties: the stronger pull toward the prior)."""
    folds = min(FOLDS, int(y.sum()), int((~y).sum()))
    if folds < 2:
        return STRENGTHS[-1]
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y))
    losses = [
        sum(_log_loss(fit_toward(x[fit], y[fit], prior, s), x[held], y[held]) for fit, held in splits)
        for s in STRENGTHS
    ]
    best = min(losses)
    return max(s for s, loss in zip(STRENGTHS, losses, strict=True) if loss <= best + 1e-9)


def fit_from_prior(x: NDArray[np.float64], y: NDArray[np.bool_], prior: Prior) -> tuple[Prior, float]:
    """The workload head: `prior` corrected by these rows at the cross-validated strength."""
    strength = choose_strength(x, y, prior)
    return fit_toward(x, y, prior, strength), strength
