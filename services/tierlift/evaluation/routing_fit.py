"""A workload's routing head, started from the shipped prior rather than from nothing.

The shipped classifier's routing head (`classifier/model/heads.npz`) already ranks prompts by
their form; a workload's judged prompts should correct it where that workload differs, not
relearn it. So the workload head is the shipped head plus a departure: logistic regression whose
logit is the shipped head's logit plus `departure · standardised form + shift`, with an L2
penalty `strength / 2 · |departure|²` (the shift, which only moves the base rate, is barely
penalised). A large strength keeps the shipped head (with the workload's base rate); a small
one lets the workload's own rows decide. The strength is chosen by stratified cross-validation on
the rows given to the fit and nothing else. With no rows the fit is the shipped head itself.

A workload's traffic mixes prompt families (multiple-choice questions and open ones, by the
form), and one family may be a small share of it, yet the head ranks each family's prompts with
the same weights. So in the fit each family of `MIN_FAMILY_ROWS` rows or more counts alike
(scikit-learn's "balanced" weights over those families): a departure must serve the minority
family's rows as well as the majority's, instead of following the majority alone. A smaller
family's rows count once each (a handful weighted up would decide the departure by themselves),
and with one family the weights are all 1. How far the head departs is still judged on the rows
as they come: the cross-validation scores each strength by the unweighted out-of-fold log loss,
the workload's own mix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.class_weight import compute_sample_weight

from tierlift.classifier._model import LinearHead, load_heads
from tierlift.classifier._prompt_form import NAMES

STRENGTHS = tuple(float(s) for s in np.logspace(-1, 4, 11))  # 0.1 .. 10,000, half a decade apart
FOLDS = 5
SHIFT_PENALTY = 1e-3  # keeps the shift finite on a fold whose labels are nearly all one verdict
MAX_STEPS = 50
OPTIONS = NAMES.index("options")  # the prompt form's count of lettered answer options
MIN_FAMILY_ROWS = 2 * FOLDS  # a family weighed up has rows to spare for every fold that judges the fit


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


def prompt_families(x: NDArray[np.float64]) -> NDArray[np.int64]:
    """Each form's prompt family: 1 for a multiple-choice question (it lists lettered options), 0
    for any other prompt. Forms of another width than `prompt_form`'s: all one family."""
    if x.ndim != 2 or x.shape[1] != len(NAMES):
        return np.zeros(len(x), dtype=np.int64)
    return (x[:, OPTIONS] > 0).astype(np.int64)


def family_weights(families: NDArray[np.int64]) -> NDArray[np.float64]:
    """Row weights under which every family of `MIN_FAMILY_ROWS` rows or more weighs as much in
    all as each other such family (their rows / (such families * the family's rows)); a smaller
    family's rows, too few to speak for their family, weigh 1 each, as do all rows when fewer
    than two families are that large."""
    weights = np.ones(len(families))
    names, counts = np.unique(families, return_counts=True)
    large = names[counts >= MIN_FAMILY_ROWS]
    if len(large) > 1:
        rows = np.isin(families, large)
        weights[rows] = compute_sample_weight("balanced", families[rows])
    return weights


def fit_toward(
    x: NDArray[np.float64],
    y: NDArray[np.bool_],
    prior: Prior,
    strength: float,
    weights: NDArray[np.float64] | None = None,
) -> Prior:
    """The penalised fit of the departure from `prior` on rows `x` (forms) with verdicts `y`,
    each row's log loss counted `weights` times (default 1), returned as a head on the raw
    forms. No rows: `prior` unchanged."""
    if len(x) == 0:
        return Prior(prior.weights.copy(), prior.bias)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
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
        return float(w @ (np.logaddexp(0, logit) - target * logit) + penalty @ theta**2 / 2)

    # Newton's method with step halving on the penalised log loss (convex; one parameter a feature)
    theta = np.zeros(x.shape[1] + 1)
    current = loss(theta)
    for _ in range(MAX_STEPS):
        p = 0.5 * (1 + np.tanh((offset + zz @ theta) / 2))  # the logistic function, without overflow
        gradient = zz.T @ (w * (p - target)) + penalty * theta
        step = np.linalg.solve((zz * (w * p * (1 - p))[:, None]).T @ zz + np.diag(penalty), gradient)
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


def choose_strength(
    x: NDArray[np.float64], y: NDArray[np.bool_], prior: Prior, families: NDArray[np.int64], seed: int = 0
) -> float:
    """The strength of `STRENGTHS` with the lowest out-of-fold log loss (unweighted: the rows' own
    mix) over stratified folds of these rows, each fold fitted with its own rows' family weights
    (ties: the stronger pull toward the prior)."""
    folds = min(FOLDS, int(y.sum()), int((~y).sum()))
    if folds < 2:
        return STRENGTHS[-1]
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y))
    losses = [
        sum(
            _log_loss(fit_toward(x[fit], y[fit], prior, s, family_weights(families[fit])), x[held], y[held])
            for fit, held in splits
        )
        for s in STRENGTHS
    ]
    best = min(losses)
    return max(s for s, loss in zip(STRENGTHS, losses, strict=True) if loss <= best + 1e-9)


def fit_from_prior(
    x: NDArray[np.float64], y: NDArray[np.bool_], prior: Prior, families: NDArray[np.int64] | None = None
) -> tuple[Prior, float]:
    """The workload head: `prior` corrected by these rows, every prompt family (`families`, by
    default `prompt_families(x)`) weighing alike, at the cross-validated strength."""
    families = prompt_families(x) if families is None else families
    strength = choose_strength(x, y, prior, families)
    return fit_toward(x, y, prior, strength, family_weights(families)), strength
