"""Deploy the OpenAI-compatible endpoint on the running Ray cluster and return (the
application keeps running after the job ends)::

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 \\
        --runtime-env jobs/runtime_env.yaml -- \\
        python jobs/serve.py ckpt=demo_out/runs/finetune replicas.max_replicas=4 host=0.0.0.0

Arguments are ``ServeConfig`` overrides (``key=value``); ``ckpt`` may be a bucket URI. On
``host=0.0.0.0`` the job needs ``RAY_VLM_API_KEY`` in its environment (``env_vars`` of the runtime
env) or ``auth.allow_unauthenticated=true``. It is
``ray-vlm serve --detach`` on the cluster the job runs on: what cannot be reached or fit ends it
with ``ray-vlm serve: <message>`` and status 2. ``serve deploy configs/serve/gpu.yaml`` does the
same from a Serve config file.
"""

import os
import sys

from ray_vlm.cli import main

if __name__ == "__main__":
    os.environ.setdefault("RAY_ADDRESS", "auto")  # the cluster this job runs on, never a new one
    sys.exit(main(["serve", "--detach", *sys.argv[1:]]))
