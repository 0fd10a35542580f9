"""A small convolutional network: forward, backward and an Adam step on random data.

    python examples/quickstart.py          # CPU
    python examples/quickstart.py gpu      # GPU, where CuPy and a CUDA device exist
"""
import sys
import time

import tinygan as tg

try:
    tg.backend.use_device(sys.argv[1] if len(sys.argv) > 1 else "cpu")
except (tg.backend.BackendError, ValueError) as error:
    sys.exit(f"quickstart: {error}")
tg.backend.seed(0)
model = tg.Sequential([tg.Conv2D(1, 16, 5, stride=2, padding=2), tg.BatchNorm(16), tg.LeakyReLU(0.2),
                       tg.Flatten(), tg.Dense(16 * 14 * 14, 1)])
optimizer, loss = tg.Adam(model.parameters()), tg.BCEWithLogits()
x = tg.backend.rng().standard_normal((64, 1, 28, 28), dtype="float32")   # a batch of "images"
for step in range(5):
    start = time.perf_counter()
    value = loss(model(x), 1.0)                  # forward: the mean loss as a Python float
    optimizer.zero_grad()
    model.backward(loss.backward())              # backward: fills every layer's grads
    optimizer.step()                             # Adam updates the parameters in place
    print(f"step {step}: loss {value:.4f}  ({(time.perf_counter() - start) * 1e3:.1f} ms)")
