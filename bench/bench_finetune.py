"""Time of one Stage II fine-tuning step divided by one ERM step, same batch and model.

    python bench/bench_finetune.py [--device cuda] [--backbone resnet50 --image-size 224 --batch-size 64]

Same as ``labconsole bench finetune``; prints the ratio (target ≤ 2.0×: the step runs two
forward passes and one backward through both; the authors' code runs three forward passes).
"""

from __future__ import annotations

import argparse
import json

from labconsole.engine.train.finetune_bench import format_result, measure_finetune_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="cifar_resnet8")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--views", default="translate", choices=("translate", "translate-flip", "table1"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure_finetune_step(
        backbone=args.backbone,
        image_size=args.image_size,
        width=args.width,
        batch_size=args.batch_size,
        device=args.device,
        repeats=args.repeats,
        views=args.views,
    )
    print(json.dumps(result, indent=2) if args.json else format_result(result))


if __name__ == "__main__":
    main()
