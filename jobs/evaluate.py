"""Score a model on a split on the running Ray cluster (thin entrypoint for ``ray job submit``)::

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 \\
        --runtime-env jobs/runtime_env.yaml -- \\
        python jobs/evaluate.py ckpt=demo_out/runs/finetune compare=demo_out/assets/models/llava \\
        data=demo_captions_test task=caption

Arguments are ``EvalConfig`` overrides (``config=FILE`` and ``key=value``).
"""

import sys

import ray

from ray_vlm.config import load_config
from ray_vlm.config.eval_schema import EvalConfig
from ray_vlm.evaluate.run import evaluate, format_metrics

if __name__ == "__main__":
    cfg = load_config(EvalConfig, sys.argv[1:])
    ray.init(address="auto")
    result = evaluate(cfg)
    print(format_metrics(result))
    print(f"report: {result.report}")
