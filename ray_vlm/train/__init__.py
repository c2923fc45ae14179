"""Stage 5 of the flow: fine-tuning on Ray Train workers with DeepSpeed (ZeRO-3 by default).

Entry point: ``ray_vlm.train.trainer.train(cfg) -> TrainResult``. Recipe read top to bottom:
``trainer.py`` (driver) -> ``loop.py`` (each worker) -> ``batches.py`` / ``checkpoint.py`` /
``metrics.py``; ``deepspeed_config.py`` and ``schedule.py`` turn the config into DeepSpeed's terms.
"""
