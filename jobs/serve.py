"""Deploy the OpenAI-compatible endpoint on the running Ray cluster and return (the
application keeps running after the job ends)::

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 \\
        --runtime-env jobs/runtime_env.yaml -- \\
        python jobs/serve.py ckpt=demo_out/runs/finetune replicas.max_replicas=4 host=0.0.0.0

Arguments are ``ServeConfig`` overrides (``key=value``); ``ckpt`` may be a bucket URI. What cannot
be reached or fit ends it with ``ray-vlm serve: <message>`` and status 2. ``serve deploy
configs/serve/gpu.yaml`` does the same from a Serve config file.
"""

import os
import sys

from ray_vlm.cli import run_command
from ray_vlm.config import load_config
from ray_vlm.config.serve_schema import ServeConfig
from ray_vlm.serve import run_server


def main(args: list[str]) -> int:
    print(f"serving at {run_server(load_config(ServeConfig, args), blocking=False)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("RAY_ADDRESS", "auto")  # the cluster this job runs on, never a new one
    sys.exit(run_command("serve", lambda: main(sys.argv[1:])))
