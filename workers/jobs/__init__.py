"""Long jobs run by workers, recorded in vk.jobs: train, reembed, recover, evaluate, predict."""

import importlib
from collections.abc import Callable
from typing import Any


def _handler(module: str, name: str) -> Callable[..., Any]:
    """A job's handler, imported on its first run: the jobs pull in torch, scikit-learn and
    gensim, seconds that every command line's start would pay otherwise."""

    def run(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(f"vectorkeep.workers.jobs.{module}"), name)(*args, **kwargs)

    run.__name__ = name
    return run


HANDLERS = {
    "train": _handler("train", "run_train"),
    "reembed": _handler("reembed", "run_reembed"),
    "recover": _handler("recover", "run_recover"),
    "evaluate": _handler("evaluate", "run_evaluate"),
    "predict": _handler("predict", "run_predict"),
}

__all__ = ["HANDLERS"]
