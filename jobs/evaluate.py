"""Score a model on a split on the running Ray cluster (thin entrypoint for ``ray job submit``)::

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 \\
        --runtime-env jobs/runtime_env.yaml -- \\
        python jobs/evaluate.py ckpt=demo_out/runs/finetune compare=demo_out/assets/models/llava \\
        data=demo_captions_test task=caption

Arguments are ``EvalConfig`` overrides (``config=FILE`` and ``key=value``); ``ckpt`` may be a bucket
URI. What cannot be reached ends it with ``ray-vlm evaluate: <message>`` and status 2.
"""

import os
import sys

from ray_vlm.cli import run_command
from ray_vlm.config import load_config
from ray_vlm.config.eval_schema import EvalConfig
from ray_vlm.evaluate.run import evaluate, format_metrics


def main(args: list[str]) -> int:
    result = evaluate(load_config(EvalConfig, args))
    print(format_metrics(result))
    print(f"report: {result.report}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("RAY_ADDRESS", "auto")  # the cluster this job runs on, never a new one
    sys.exit(run_command("evaluate", lambda: main(sys.argv[1:])))
