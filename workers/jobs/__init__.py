"""Long jobs run by workers, recorded in vk.jobs: train, reembed, recover, evaluate, predict."""

from vectorkeep.workers.jobs.evaluate import run_evaluate
from vectorkeep.workers.jobs.predict import run_predict
from vectorkeep.workers.jobs.recover import run_recover
from vectorkeep.workers.jobs.reembed import run_reembed
from vectorkeep.workers.jobs.train import run_train

HANDLERS = {
    "train": run_train,
    "reembed": run_reembed,
    "recover": run_recover,
    "evaluate": run_evaluate,
    "predict": run_predict,
}

__all__ = ["HANDLERS"]
