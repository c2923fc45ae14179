"""Fine-tune on the running Ray cluster (thin entrypoint for ``ray job submit``)::

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 \\
        --runtime-env jobs/runtime_env.yaml -- \\
        python jobs/finetune.py config=configs/finetune/demo.yaml steps=50

Arguments are ``FinetuneConfig`` overrides (``config=FILE`` and ``key=value``); ``dump_dir`` may be
shared storage or a bucket URI. Prints the final checkpoint and the exported Hugging Face directory.
What the run cannot reach or fit ends it with ``ray-vlm train: <message>`` and status 2, as
``ray-vlm train`` does.
"""

import os
import sys

from ray_vlm.cli import run_command
from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.export.finetune import train_and_export


def main(args: list[str]) -> int:
    out = train_and_export(load_config(FinetuneConfig, args))
    print(f"step {out.result.step}: checkpoint {out.result.checkpoint}")
    print(f"Hugging Face model: {out.hf_dir}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("RAY_ADDRESS", "auto")  # the cluster this job runs on, never a new one
    sys.exit(run_command("train", lambda: main(sys.argv[1:])))
