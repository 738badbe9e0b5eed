"""One folder per model family: its train, load and evaluate, over arrays and iterables.

No module here touches the database: the job handlers (vectorkeep.workers.jobs) read
what a family learns from and store what it made. import-linter checks it
([tool.importlinter] in pyproject.toml).
"""
