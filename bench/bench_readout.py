"""Readout benchmark: fast path (tensor cache + recomputation from the first modified layer) vs
a plain DataLoader over PNG files, on the same model and data. Same as `labconsole bench readout`.

    python bench/bench_readout.py                       # embedded default on the CPU
    python bench/bench_readout.py --backbone resnet50 --image-size 224 --device cuda
"""

from labconsole.cli.bench import bench_app

if __name__ == "__main__":
    bench_app(["readout", *__import__("sys").argv[1:]])
