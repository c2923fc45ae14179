"""``ray-vlm``: one sub-command per stage; each parses its arguments and calls one library function.

Commands that start Ray first check what they must reach (``ray_vlm.preflight``: light imports)
and only then import their stage (torch, Ray, DeepSpeed): a command that cannot start ends within
seconds. ``jobs/*.py`` run these same commands on the cluster a job runs on.
"""

from __future__ import annotations

import argparse
import json
import sys

from ray_vlm.config import UserError
from ray_vlm.config.secrets import install_log_masking, say


def _demo(args: argparse.Namespace) -> int:
    from ray_vlm.demo.run import run_demo

    run_demo(args.out, args.config)
    return 0


def _check_data(args: argparse.Namespace) -> int:
    from ray_vlm.config import FinetuneConfig, load_config
    from ray_vlm.preflight import check_init_model
    from ray_vlm.records import select_datamix

    cfg = load_config(FinetuneConfig, args.overrides, path=args.config)
    check_init_model(cfg.checkpoint.init_ckpt_path)
    select_datamix(cfg.data.datamix, cfg.data.datasets_yaml)
    from ray_vlm.preprocess.check_data import check_data, format_check

    check = check_data(cfg)
    say(json.dumps(check.to_dict()) if args.json else format_check(check))
    return 0 if check.invalid == 0 else 1


def _serve(args: argparse.Namespace) -> int:
    from ray_vlm.config import load_config
    from ray_vlm.config.serve_schema import ServeConfig
    from ray_vlm.preflight import check_model_source

    given = [f"ckpt={args.ckpt}"] if args.ckpt else []
    cfg = load_config(ServeConfig, [*args.overrides, *given])
    check_model_source(cfg.ckpt, "ckpt")
    from ray_vlm.serve import run_server

    url = run_server(cfg, blocking=not args.detach)
    if args.detach:
        say(f"serving at {url}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from ray_vlm.config import FinetuneConfig, load_config
    from ray_vlm.preflight import check_finetune

    cfg = load_config(FinetuneConfig, args.overrides, path=args.config)
    check_finetune(cfg)
    from ray_vlm.train.lease import check_free

    check_free(cfg.dump_dir)  # another live run there ends this one before the heavy imports
    from ray_vlm.export.finetune import train_and_export
    from ray_vlm.preprocess.bad_records import left_out_lines

    out = train_and_export(cfg)
    say("\n".join(left_out_lines(out.result.left_out)))
    say(f"step {out.result.step}: checkpoint {out.result.checkpoint}")
    say(f"Hugging Face model: {out.hf_dir}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ray_vlm.config import load_config
    from ray_vlm.config.eval_schema import EvalConfig
    from ray_vlm.preflight import check_model_source
    from ray_vlm.records import select_datamix
    from ray_vlm.train.lease import check_free

    flags = {"ckpt": args.ckpt, "data": args.data, "task": args.task, "compare": args.compare}
    given = [f"{k}={v}" for k, v in flags.items() if v is not None]
    cfg = load_config(EvalConfig, [*args.overrides, *given], path=args.config)
    select_datamix(f"{cfg.data}:1", cfg.datasets_yaml)
    check_model_source(cfg.ckpt, "ckpt")
    if cfg.compare:
        check_model_source(cfg.compare, "compare")
    check_free(cfg.out_dir, "out_dir")  # another live evaluation writes there: refused at once
    from ray_vlm.evaluate.run import evaluate, format_metrics

    result = evaluate(cfg)
    say(format_metrics(result))
    say(f"report: {result.report}")
    return 0


def _make_demo_assets(args: argparse.Namespace) -> int:
    from ray_vlm.demo.assets import DEFAULT_MODELS, MODEL_BUILDERS, make_demo_assets

    unknown = sorted(set(args.models or ()) - set(MODEL_BUILDERS))
    if unknown:
        raise UserError(f"--models: {', '.join(unknown)} not among {', '.join(MODEL_BUILDERS)}")
    counts = {"train": args.train, "test": args.test}
    models = tuple(args.models or DEFAULT_MODELS)
    say(make_demo_assets(args.out, counts=counts, models=models, seed=args.seed))
    return 0


def _convert_hf(args: argparse.Namespace) -> int:
    from ray_vlm.records.hf_convert import convert_hf_dataset

    report = convert_hf_dataset(
        args.dataset,
        args.out,
        splits=args.split or None,
        image_column=args.image_column,
        text_column=args.text_column,
        question_column=args.question_column,
        id_column=args.id_column,
        prompt=args.prompt,
    )
    for split, n in report.written.items():
        say(f"{args.out}/{split}.jsonl: {n} records")
    for bad in report.skipped:
        say(f"skipped {bad}", file=sys.stderr)
    say(f"{len(report.skipped)} rows skipped")
    return 0


def _consolidate(args: argparse.Namespace) -> int:
    from ray_vlm.export.resolve import consolidate_at

    say(consolidate_at(args.ckpt, args.out))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from ray_vlm.preflight import check_model_source

    if args.media_type != "image":
        raise UserError("--media_type video is not supported; give an image")
    check_model_source(args.ckpt, "--ckpt")
    from ray_vlm.export.generate_one import generate_one
    from ray_vlm.export.resolve import locate_model
    from ray_vlm.model import SamplingParams

    params = SamplingParams(max_new_tokens=args.max_new_tokens)
    ckpt = locate_model(args.ckpt, "--ckpt")
    out = generate_one(ckpt, args.media_path, args.question, params, args.processor_kwargs)
    say(f"Generation: {out.text}")
    return 0


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON ({err})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("give a JSON object, e.g. '{\"max_num_tiles\": 1}'")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ray-vlm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run every stage on the embedded demo (local Ray cluster)")
    p.add_argument("--out", default="demo_out", help="folder for assets and outputs")
    p.add_argument(
        "--config", default="configs/finetune/demo.yaml", help="fine-tune config of the demo"
    )
    p.set_defaults(func=_demo)

    p = sub.add_parser("check-data", help="validate and preprocess every record of a datamix")
    p.add_argument("--config", help="finetune YAML (or give config=PATH among the overrides)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. data.datamix=a:1")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_check_data)

    p = sub.add_parser("serve", help="OpenAI-compatible HTTP endpoint on Ray Serve (Ctrl-C stops)")
    p.add_argument("--ckpt", help="HF dir, checkpoint step dir, run dump_dir, hub id or URI")
    p.add_argument(
        "--detach", action="store_true", help="deploy and return; the application keeps running"
    )
    p.add_argument(
        "overrides", nargs="*", help="ServeConfig key=value, e.g. port=8000 replicas.max_replicas=4"
    )
    p.set_defaults(func=_serve)

    p = sub.add_parser("train", help="fine-tune with Ray Train + DeepSpeed (resumes its dump_dir)")
    p.add_argument("--config", help="finetune YAML (or give config=PATH among the overrides)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. steps=50")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="score a model on a split through Serve replicas")
    p.add_argument("--ckpt", help="HF dir, checkpoint step dir, run dump_dir or hub id")
    p.add_argument("--data", help="registry name of the split, e.g. demo_captions_test")
    p.add_argument("--task", choices=["caption", "vqa", "exact"])
    p.add_argument("--compare", help="a second model (e.g. the base) scored side by side")
    p.add_argument("--config", help="evaluation YAML (EvalConfig); flags and key=value win")
    p.add_argument("overrides", nargs="*", help="EvalConfig key=value, e.g. max_new_tokens=16")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser(
        "make-demo-assets", help="write demo data (both guides' layouts) and tiny models"
    )
    p.add_argument("--out", required=True)
    p.add_argument("--train", type=int, default=1000, help="training images")
    p.add_argument("--test", type=int, default=100, help="test (and validation) images")
    p.add_argument(
        "--models",
        nargs="*",
        help="tiny models to build (default: the demo's five; e.g. llava paligemma); family "
        "stand-ins only when named: qwen2_vl qwen2_5_vl qwen3_vl llava_next llava_onevision "
        "mllama gemma3 smolvlm internvl",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_make_demo_assets)

    p = sub.add_parser("convert-hf", help="Hugging Face dataset -> PLM jsonl + images (PLM guide)")
    p.add_argument(
        "--dataset", required=True, help="save_to_disk/parquet/imagefolder path or hub id"
    )
    p.add_argument("--out", required=True)
    p.add_argument("--split", action="append", help="split to convert (repeatable; default all)")
    p.add_argument("--image-column", default="image")
    p.add_argument("--text-column", default="caption", help="caption, or the answer column for VQA")
    p.add_argument("--question-column", default=None, help="VQA: the question column")
    p.add_argument("--id-column", default=None, help="column naming each image file")
    p.add_argument("--prompt", default="Describe the image.", help="captioning prompt")
    p.set_defaults(func=_convert_hf)

    p = sub.add_parser("consolidate", help="ZeRO-3 checkpoint -> Hugging Face directory")
    p.add_argument("--ckpt", required=True, help="checkpoint dir: <dump_dir>/checkpoints/<step>")
    p.add_argument("--out", default=None, help="output dir (default: <ckpt>/consolidated)")
    p.set_defaults(func=_consolidate)

    p = sub.add_parser("generate", help="answer one question about one image (PLM generate.py)")
    p.add_argument(
        "--ckpt", required=True, help="hub id, Hugging Face dir, checkpoint dir or run dump_dir"
    )
    p.add_argument("--media_type", default="image", choices=["image", "video"])
    p.add_argument("--media_path", required=True)
    p.add_argument("--question", required=True)
    p.add_argument("--max_new_tokens", type=int, default=64)
    p.add_argument(
        "--processor_kwargs",
        type=_json_object,
        default={},
        help="processor settings as JSON, e.g. '{\"max_num_tiles\": 1}' (a hub Perception LM)",
    )
    p.set_defaults(func=_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a ``UserError`` ends it with one line on stderr, ``ray-vlm <command>:
    <message>``, and status 2. Log records and printed lines have their credentials masked
    (``config.secrets``)."""
    args = build_parser().parse_args(argv)
    install_log_masking()
    try:
        return args.func(args)
    except UserError as err:
        say(f"ray-vlm {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
