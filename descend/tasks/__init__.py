"""Layer ``tasks``: built-in workloads on data that ships with a package, and running them.

- :class:`Task` (with :class:`Target`, :class:`TaskData`): data, model, loss,
  metrics, a target and a default recipe; :func:`get_task`, :data:`TASKS`,
  :func:`task_names`;
- the tasks: ``linreg``, ``logreg``, ``digits``, ``mnist1d``, ``deep_sigmoid``,
  ``deep_residual``, ``recommender``, ``charlm``, ``vae`` (see ``docs/tasks.md``);
- :func:`run_task`, :func:`compare` and :func:`summarize`;
- task helpers: :func:`load_movielens`, :func:`sample_text` (charlm),
  :func:`sample_images` (vae).

Nothing here downloads: data is generated, or read from files installed with
scikit-learn, mnist1d or Python itself.
"""

from descend.tasks.charlm import sample as sample_text
from descend.tasks.recommender import Ratings, load_movielens
from descend.tasks.registry import TASKS, get_task, task_names, task_options
from descend.tasks.run import LR_FROM_CALLER, LR_FROM_TASK, RunResult, compare, run_task, warm_up
from descend.tasks.summary import summarize
from descend.tasks.task import Target, Task, TaskData
from descend.tasks.vae import sample as sample_images

__all__ = [
    "LR_FROM_CALLER",
    "LR_FROM_TASK",
    "TASKS",
    "Ratings",
    "RunResult",
    "Target",
    "Task",
    "TaskData",
    "compare",
    "get_task",
    "load_movielens",
    "run_task",
    "sample_images",
    "sample_text",
    "summarize",
    "task_names",
    "task_options",
    "warm_up",
]
