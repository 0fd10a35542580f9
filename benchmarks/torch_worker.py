"""PyTorch's side of the training-step benchmark, in a process of its own.

Timed inside tinygan's process, PyTorch inherits what tinygan sets for its
own programs (tinygan/threads.py) and the state of tinygan's thread pools:
its dcgan step ran 15% slower and its mlp step 35% slower that way than in a
process of its own. So `python -m benchmarks` starts this worker with the
environment the user started it with, and asks it for one step at a time,
taking turns of a few steps with tinygan's (benchmarks/timing.py, measure_pair).

The protocol is one JSON object per line. The first, on standard input:
    {"state": "file.npz", "arch": "dcgan", "batch": 64, "device": "cpu"}
(the tinygan generator's and discriminator's weights and a real batch, so both
sides start from the same weights and see the same images); the worker answers
{"ready": torch version, "threads": n, "environment": its thread variables}. Then each {"step": "standard" |
"translated"} is answered with {"seconds": s}: one step, timed in the worker.
"""
import json
import os
import sys
import time

import numpy as np
import torch

from benchmarks.torch_reference import TorchGAN, tensor, to_torch
from tinygan import models


def main():
    setup = json.loads(sys.stdin.readline())
    generator, discriminator = models.build(setup["arch"])
    with np.load(setup["state"]) as arrays:
        generator.load_state_dict({k[len("generator/"):]: arrays[k] for k in arrays.files if k.startswith("generator/")})
        discriminator.load_state_dict({k[len("discriminator/"):]: arrays[k] for k in arrays.files
                                       if k.startswith("discriminator/")})
        real_images = arrays["real"]
    device = "cuda" if setup["device"] == "gpu" else "cpu"
    gan = TorchGAN(to_torch(generator, 2, device), to_torch(discriminator, 4, device), device=device)
    real = tensor(real_images, device)
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    steps = {"standard": gan.standard_step, "translated": gan.train_step}
    environment = {key: os.environ.get(key) for key in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "OMP_NUM_THREADS")}
    print(json.dumps({"ready": torch.__version__, "threads": torch.get_num_threads(), "environment": environment}),
          flush=True)
    for line in sys.stdin:
        step = steps[json.loads(line)["step"]]
        synchronize()
        start = time.perf_counter()
        step(real)
        synchronize()
        print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)


if __name__ == "__main__":
    main()
