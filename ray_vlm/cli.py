"""``ray-vlm``: one sub-command per stage; each parses its arguments and calls one library function."""

from __future__ import annotations

import argparse
import sys

from ray_vlm.config import ConfigError


def _demo(args: argparse.Namespace) -> int:
    from ray_vlm.demo.run import run_demo

    run_demo(args.out)
    return 0


def _make_demo_assets(args: argparse.Namespace) -> int:
    from ray_vlm.demo.assets import make_demo_assets

    counts = {"train": args.train, "test": args.test}
    print(make_demo_assets(args.out, counts=counts, models=tuple(args.models), seed=args.seed))
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
        print(f"{args.out}/{split}.jsonl: {n} records")
    for bad in report.skipped:
        print(f"skipped {bad}", file=sys.stderr)
    print(f"{len(report.skipped)} rows skipped")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ray_vlm.demo.tiny_models import BUILDERS

    parser = argparse.ArgumentParser(prog="ray-vlm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run every stage on the embedded demo (local Ray cluster)")
    p.add_argument("--out", default="demo_out", help="folder for assets and outputs")
    p.set_defaults(func=_demo)

    p = sub.add_parser(
        "make-demo-assets", help="write demo data (both guides' layouts) and tiny models"
    )
    p.add_argument("--out", required=True)
    p.add_argument("--train", type=int, default=1000, help="training images")
    p.add_argument("--test", type=int, default=100, help="test (and validation) images")
    p.add_argument("--models", nargs="*", default=list(BUILDERS), choices=list(BUILDERS))
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"ray-vlm: config error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
