"""Tasks: what each method trains and evaluates (`asrjax.train.task.Task`), found by ``config.task``.

`TASKS` is the registry: each entry is a task class with ``from_config(config, workdir,
train_split)`` and, where the task reads its training data other than as the dataset's
``"train"`` split (speaker verification's built protocol), ``open_train_split(config,
workdir)``. A new method is one task module and one entry here, never a second trainer.
"""

from asrjax.tasks import multitalker_asr, speaker_verification, transducer_asr

TASKS = {
    "transducer_asr": transducer_asr.TransducerASR,
    "speaker_verification": speaker_verification.SpeakerVerification,
    "multitalker_asr": multitalker_asr.MultitalkerASR,
}

DEFAULT = "transducer_asr"  # the task of a config (or a run's config.json) that names none


def task_name(config) -> str:
  """``config.task``, or `DEFAULT` for a config written before tasks were named."""
  return config.get("task", DEFAULT) if hasattr(config, "get") else DEFAULT


def build(config, workdir: str, train_split=None):
  """``TASKS[config.task].from_config(config, workdir, train_split)``.

  Raises:
    ValueError: ``config.task`` is not in `TASKS` (naming those that are).
  """
  name = task_name(config)
  if name not in TASKS:
    raise ValueError(f"task must be one of {sorted(TASKS)}; got {name!r}.")
  return TASKS[name].from_config(config, workdir, train_split)


def open_train_split(config, workdir: str):
  """The training split as ``config``'s task reads it: the task's ``open_train_split`` where it
  has one, else the dataset's ``"train"`` split.

  Raises:
    ValueError: ``config.task`` is not in `TASKS`.
  """
  name = task_name(config)
  if name not in TASKS:
    raise ValueError(f"task must be one of {sorted(TASKS)}; got {name!r}.")
  opener = getattr(TASKS[name], "open_train_split", None)
  if opener is not None:
    return opener(config, workdir)
  from asrjax.data import sources  # noqa: PLC0415

  return sources.open_split(config.data.name, "train", config.data.data_dir)
