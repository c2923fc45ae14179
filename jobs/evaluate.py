"""Score a model on a split on the running Ray cluster (thin entrypoint for ``ray job submit``)::

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 \\
        --runtime-env jobs/runtime_env.yaml -- \\
        python jobs/evaluate.py ckpt=demo_out/runs/finetune compare=demo_out/assets/models/llava \\
        data=demo_captions_test task=caption

Arguments are ``EvalConfig`` overrides (``config=FILE`` and ``key=value``); ``ckpt`` may be a bucket
URI. It is ``ray-vlm evaluate`` on the cluster the job runs on: what cannot be reached ends it with
``ray-vlm evaluate: <message>`` and status 2.
"""

import os
import sys

from ray_vlm.cli import main

if __name__ == "__main__":
    os.environ.setdefault("RAY_ADDRESS", "auto")  # the cluster this job runs on, never a new one
    sys.exit(main(["evaluate", *sys.argv[1:]]))
