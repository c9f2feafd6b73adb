"""Background jobs: the queue (Huey), set up from the config, and thin job functions.

- ``queue``: the Huey instance of one process (SQLite file in the data folder
  on the embedded default, Redis when configured), the one task
  (``analyse``), the after-commit hook that queues what ``domain.analyses``
  asked for, and the sweep that queues lost work again.
- ``runner``: one job, start to end: claim, run the analysis, record the
  outcome, commit (the job is the unit of work, as a request is).
- ``kinds``: which analysis kinds exist (importing it registers them).
- ``consumer``: the embedded consumer of ``image-repo serve`` and the one of
  ``image-repo worker``.

Job functions do no work of their own: they call the domain.
"""
