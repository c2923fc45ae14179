"""Fine-tune on the running Ray cluster (thin entrypoint for ``ray job submit``)::

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 \\
        --runtime-env jobs/runtime_env.yaml -- \\
        python jobs/finetune.py config=configs/finetune/demo.yaml steps=50

Arguments are ``FinetuneConfig`` overrides (``config=FILE`` and ``key=value``); ``dump_dir`` may be
shared storage. Prints the final checkpoint and the exported Hugging Face directory.
"""

import sys

import ray

from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.export.finetune import train_and_export

if __name__ == "__main__":
    cfg = load_config(FinetuneConfig, sys.argv[1:])
    ray.init(address="auto")
    out = train_and_export(cfg)
    print(f"step {out.result.step}: checkpoint {out.result.checkpoint}")
    print(f"Hugging Face model: {out.hf_dir}")
