"""Config files loading each other by path (``experiments/configs/<model>.py`` loads ``common.py``).

`ml_collections.config_flags` loads a config file by its path, not as a module of a
package, so a config cannot ``import common``. `sibling` loads a file of the same folder by
path instead: no ``sys.path`` edit, from any current directory, afresh on every load.
"""

from __future__ import annotations

import importlib.util
import os
import types


def sibling(config_file: str, name: str) -> types.ModuleType:
  """``<name>.py`` of ``config_file``'s folder, loaded by path (pass ``__file__``).

  Raises:
    FileNotFoundError: there is no such file.
  """
  path = os.path.join(os.path.dirname(os.path.abspath(config_file)), name + ".py")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} does not exist: {os.path.basename(config_file)} loads it ({name!r}).")
  spec = importlib.util.spec_from_file_location(f"asrjax_experiment_configs_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
