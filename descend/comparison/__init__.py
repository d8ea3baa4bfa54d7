"""Layer ``comparison``: optimizers compared on a task as one library call that never loses a run.

- :func:`compare`: each optimizer over seeds on a task, written to its run folder as
  each run ends; :func:`resume` continues an interrupted one; :class:`Comparison`
  is what they return;
- the folder's safety: :class:`FolderInUseError` (another process holds it),
  :class:`DiskFullError`;
- :func:`task_info`, :func:`run_record`: a task and a finished run as the plain
  dicts of the report layer (``descend train`` uses them too).

It sits below ``report`` in the layer table: it runs tasks (``tasks``), judges
them (``diagnose``) and writes the folder (``report``).
"""

from descend.comparison.folder import DiskFullError, FolderInUseError
from descend.comparison.plan import Plan, load_plan
from descend.comparison.records import hyperparameters, run_record, task_info
from descend.comparison.run import SEED_OPTIMIZERS, Comparison, compare, resume

__all__ = [
    "SEED_OPTIMIZERS",
    "Comparison",
    "DiskFullError",
    "FolderInUseError",
    "Plan",
    "compare",
    "hyperparameters",
    "load_plan",
    "resume",
    "run_record",
    "task_info",
]
