# %% [markdown]
# # SGD, momentum and Adam on one small problem
#
# A Dense layer fits a linear map from noisy examples; the three optimizers of tinygan/optimizers.py
# take the same 200 steps from the same start. Adam scales each weight's step by its own gradient
# history, so an ill-conditioned problem (inputs on very different scales) hurts it least.
#
#     python examples/adam_vs_sgd.py

# %%
import numpy as np

import tinygan as tg

rng = np.random.default_rng(0)
scales = np.array([10.0, 1.0, 0.1])                  # inputs on three very different scales
x = (rng.standard_normal((256, 3)) * scales).astype(np.float32)
true_W = np.array([[0.5], [-1.0], [3.0]], dtype=np.float32)
y = x @ true_W + 0.01 * rng.standard_normal((256, 1)).astype(np.float32)


def fit(make_optimizer, steps=200):
    tg.backend.seed(1)
    model = tg.Sequential([tg.Dense(3, 1)])
    optimizer = make_optimizer(model.parameters())
    for _ in range(steps):
        optimizer.zero_grad()
        prediction = model.forward(x)
        error = prediction - y
        model.backward(2 * error / len(x))           # d(mean squared error)/d(prediction)
        optimizer.step()
    return float((error ** 2).mean()), model[0].params["W"].ravel()


# %% The same start, three rules (the largest SGD step that does not diverge on the 10x-scaled input)
for name, make in [("SGD lr 0.004", lambda p: tg.SGD(p, lr=0.004)),
                   ("SGD + momentum 0.9", lambda p: tg.SGD(p, lr=0.004, momentum=0.9)),
                   ("Adam lr 0.05", lambda p: tg.Adam(p, lr=0.05, betas=(0.9, 0.999)))]:
    loss, W = fit(make)
    print(f"{name:<20} mean squared error {loss:10.5f}   W = {np.round(W, 3)}   (true {true_W.ravel()})")
