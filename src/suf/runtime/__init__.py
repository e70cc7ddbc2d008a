"""Running secure inference: deal, publish, serve, run locally, and the processes of `suf run`."""
from suf.runtime.inference import (DealReport, Deployment, SecureRun, deal, publish_weights,
                                   run_secure, serve)

__all__ = ["DealReport", "Deployment", "SecureRun", "deal", "publish_weights", "run_secure",
           "serve"]
