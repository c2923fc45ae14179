"""Deploy the OpenAI-compatible endpoint on the running Ray cluster and return (the
application keeps running after the job ends)::

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 \\
        --runtime-env jobs/runtime_env.yaml -- \\
        python jobs/serve.py ckpt=demo_out/runs/finetune replicas.max_replicas=4 host=0.0.0.0

Arguments are ``ServeConfig`` overrides (``key=value``). ``serve deploy configs/serve/gpu.yaml``
does the same from a Serve config file.
"""

import sys

import ray

from ray_vlm.config import load_config
from ray_vlm.config.serve_schema import ServeConfig
from ray_vlm.serve import run_server

if __name__ == "__main__":
    cfg = load_config(ServeConfig, sys.argv[1:])
    ray.init(address="auto")
    print(f"serving at {run_server(cfg, blocking=False)}")
