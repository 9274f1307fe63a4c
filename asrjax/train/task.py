"""The task interface: what the one trainer (`asrjax.train.trainer`) needs from a method.

A task owns what is specific to a method: the batch fields it reads, its parameter sets
and their initialisation, its objective with named terms, its training batches and its
evaluators. The trainer owns the rest: the mesh, the jitted sharded step
(`asrjax.train.step`), checkpoints and resuming, logging and the time budget. Tasks are
found by ``config.task`` in `asrjax.tasks.TASKS` and built as
``Task(config, workdir, train_split)``.

A task has one or more parameter sets, each trained by its own optimizer. The first
(``param_sets[0]``, the model) lives in ``TrainState.params``; further sets (an
adversary, trained in alternation) in ``TrainState.others``. Each step updates the sets
in order, each on ``objective(..., trained=name)`` with the sets before it already
updated (Gauss-Seidel alternation, as in GAN training).

Objective terms: ``objective`` returns an `Objective`, named scalar terms and the weight
of each in the value minimised. Every term is logged. ``config.train.loss_weights``
(``{term: weight}``) sets or overrides weights by name (`with_weights`), so an auxiliary
term a model reports (a compute cost, a latency penalty) joins the objective by
configuration; a term without a weight is logged only.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, NamedTuple, Protocol

import jax
import optax

PyTree = Any


class Objective(NamedTuple):
  """Named scalar terms and the weights that make the value minimised.

  Attributes:
    terms: ``{name: scalar}``, every one logged.
    weights: ``{name: weight}`` for the terms in the objective, in the order they are
      summed; a weight may be a traced scalar (a schedule).
    metrics: further scalars to log (not differentiated, e.g. the loss per label).
  """

  terms: dict
  weights: dict
  metrics: dict = {}

  def value(self) -> jax.Array:
    """``sum(weights[k] * terms[k])`` in ``weights`` order (no leading zero: a single term
    of weight 1 is that term exactly)."""
    if not self.weights:
      raise ValueError(f"the objective has no weighted term; its terms are {sorted(self.terms)}.")
    return functools.reduce(lambda a, b: a + b, [w * self.terms[k] for k, w in self.weights.items()])


def with_weights(objective: Objective, weights: Mapping[str, float]) -> Objective:
  """``objective`` with ``weights`` (from ``config.train.loss_weights``) set by term name.

  Raises:
    ValueError: a weight names a term the objective does not have (naming those it has).
  """
  unknown = sorted(set(weights) - set(objective.terms))
  if unknown:
    raise ValueError(f"train.loss_weights names {unknown}, not terms of this objective; its terms are "
                     f"{sorted(objective.terms)}.")
  return objective._replace(weights={**objective.weights, **{k: float(w) for k, w in weights.items()}})


class Batches(Protocol):
  """Host-local training batches: an iterator of ``{field: array}`` that can be resumed."""

  dropped: int  # training examples left out (too long, ...), for the log line

  def __next__(self) -> dict: ...

  def state(self) -> dict:
    """JSON-able position, saved with each checkpoint (``step`` at least)."""

  def close(self) -> None: ...


class Task(Protocol):
  """A method the trainer can run (see the module docstring)."""

  param_sets: tuple[str, ...]  # parameter sets, the model first
  batch_fields: tuple[str, ...]  # the fields of a `Batches` item the step reads

  def optimizers(self) -> dict[str, optax.GradientTransformation]:
    """One optimizer per name in ``param_sets``."""

  def init(self, key: jax.Array) -> dict[str, PyTree]:
    """Initial parameters of every set, ``{name: params}``."""

  def objective(self, params: dict[str, PyTree], batch: dict, key: jax.Array, step: jax.Array, *,
                trained: str) -> Objective:
    """The objective that set ``trained`` minimises on ``batch`` (traced inside the step)."""

  def batches(self, step: int) -> Batches:
    """This host's training batches from global step ``step`` on (resuming)."""

  def describe(self) -> str:
    """One log line: examples, vocabulary, ... ."""

  def evaluate(self, params: dict[str, PyTree], step: int) -> dict:
    """Every evaluator the config asks for: ``{name: JSON-able result}`` for ``results.json``,
    each with a ``"scalars"`` dict logged to TensorBoard under ``eval/``."""


def check_task(task) -> None:
  """Raises `TypeError` naming what a task object lacks (a registry entry that is not a task)."""
  missing = [n for n in ("param_sets", "batch_fields", "optimizers", "init", "objective", "batches", "describe",
                         "evaluate") if not hasattr(task, n)]
  if missing:
    raise TypeError(f"{type(task).__name__} is not a task: it lacks {missing} (asrjax.train.task.Task).")
  if not task.param_sets or len(set(task.param_sets)) != len(task.param_sets):
    raise TypeError(f"{type(task).__name__}.param_sets must name one or more distinct sets; got {task.param_sets!r}.")


__all__ = ["Batches", "Objective", "Task", "check_task", "with_weights"]
