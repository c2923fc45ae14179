"""Stage 5 of the flow: fine-tuning on Ray Train workers with DeepSpeed (ZeRO-3 by default).

Entry point: ``ray_vlm.train.trainer.train(cfg) -> TrainResult``. Recipe read top to bottom:
``trainer.py`` (driver: ``run_start.py`` resolves the config and plans the data, ``data_plan.py``
/ ``data_order.py``) -> ``ray_session.py`` (each Ray Train worker's ``Session``) -> ``loop.py``
(the recipe every worker runs) -> ``batches.py`` / ``validation.py`` / ``checkpoint.py`` /
``engine.py`` / ``metrics.py`` / ``tracking.py``; ``deepspeed_config.py`` and ``schedule.py`` turn
the config into DeepSpeed's terms. ``local_run.py`` + ``local_session.py`` run the same recipe
under ``torchrun`` without Ray.
"""
