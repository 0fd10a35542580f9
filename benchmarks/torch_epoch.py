"""PyTorch's standard training loop for whole epochs, in a process of its own: the reference for `train`'s epoch.

    python -m benchmarks.torch_epoch --arch dcgan --device gpu --epochs 3 --images 60000 --data-dir DIR

The loop is pytorch/examples' DCGAN loop (benchmarks/torch_reference.py, TorchGAN.standard_step) over
the first ``--images`` MNIST training images, held on the device as `train` holds them, in a fresh
random order each epoch and in batches of 64 (the last partial batch dropped, as `train` does). The
networks are tinygan's, translated, with tinygan's initial weights. Nothing is printed per step and
no loss is read back, which is PyTorch at its fastest. It prints one JSON line: {"seconds": [one per
epoch], "torch": version, "threads": n}.
"""
import argparse
import json
import time

import torch

from benchmarks.torch_reference import TorchGAN, tensor, to_torch
from tinygan import backend, data, models

BATCH = 64


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["mlp", "dcgan"], required=True)
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=60000)
    parser.add_argument("--data-dir", required=True)
    arguments = parser.parse_args()

    device = "cuda" if arguments.device == "gpu" else "cpu"
    backend.seed(0)
    generator, discriminator = models.build(arguments.arch)
    gan = TorchGAN(to_torch(generator, 2, device), to_torch(discriminator, 4, device), device=device)
    images = tensor(data.load("mnist", arguments.data_dir, download=False).train_images[:arguments.images], device)
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    steps = len(images) // BATCH
    seconds = []
    for _ in range(arguments.epochs):
        synchronize()
        start = time.perf_counter()
        order = torch.randperm(len(images), device=device)
        for step in range(steps):
            gan.standard_step(images[order[step * BATCH:(step + 1) * BATCH]])
        synchronize()
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"seconds": seconds, "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
