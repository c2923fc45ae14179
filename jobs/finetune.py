"""Fine-tune on the running Ray cluster (thin entrypoint for ``ray job submit``)::

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 \\
        --runtime-env jobs/runtime_env.yaml -- \\
        python jobs/finetune.py config=configs/finetune/demo.yaml steps=50

Arguments are ``FinetuneConfig`` overrides (``config=FILE`` and ``key=value``); ``dump_dir`` may be
shared storage or a bucket URI. It is ``ray-vlm train`` on the cluster the job runs on: it prints
the final checkpoint and the exported Hugging Face directory, and what the run cannot reach or fit
ends it with ``ray-vlm train: <message>`` and status 2.
"""

import os
import sys

from ray_vlm.cli import main

if __name__ == "__main__":
    os.environ.setdefault("RAY_ADDRESS", "auto")  # the cluster this job runs on, never a new one
    sys.exit(main(["train", *sys.argv[1:]]))
