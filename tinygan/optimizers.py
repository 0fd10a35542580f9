"""Optimizers with PyTorch's update rules. They update parameters in place."""
from . import backend, kernels
from .cuda_graph import per_step


class Optimizer:
    """Holds (layer, name) for each parameter and reads layer.params/grads at each step."""

    def __init__(self, params):
        self.slots = [(layer, name) for layer, name, *_ in params]
        if not self.slots:
            raise ValueError(f"{type(self).__name__} got no parameters to optimise")
        self.state = [{} for _ in self.slots]
        self.steps = 0

    def zero_grad(self):
        kernels.fill_all([layer.grads[name] for layer, name in self.slots], 0)   # one launch on a GPU

    def step(self):
        self.steps += 1
        for (layer, name), state in zip(self.slots, self.state):
            self.update(layer.params[name], layer.grads[name], state)

    def update(self, param, grad, state):
        raise NotImplementedError

    def state_dict(self):
        """Step count and per-parameter state as NumPy copies: '<slot>.<key>'."""
        result = {"steps": self.steps}
        for index, state in enumerate(self.state):
            result.update({f"{index}.{key}": backend.numpy_copy(value) for key, value in state.items()})
        return result

    def load_state_dict(self, saved):
        self.steps = int(saved["steps"])
        for index, ((layer, name), state) in enumerate(zip(self.slots, self.state)):
            param = layer.params[name]
            state.clear()
            for key in saved:
                if key.startswith(f"{index}."):
                    value = saved[key]
                    if tuple(value.shape) != tuple(param.shape):
                        raise ValueError(f"optimizer state {key!r} has shape {tuple(value.shape)}, "
                                         f"its parameter {tuple(param.shape)}")
                    # astype copies, so the optimizer never shares memory with the dict it loaded
                    state[key.split(".", 1)[1]] = backend.to_device(value, backend.device_of(param)).astype(param.dtype)


class SGD(Optimizer):
    """v = momentum v + g (v = g at the first step);  param -= lr v.  (momentum=0: param -= lr g)"""

    def __init__(self, params, lr, momentum=0.0):
        super().__init__(params)
        self.lr, self.momentum = lr, momentum

    def update(self, param, grad, state):
        if self.momentum == 0:
            param -= self.lr * grad
            return
        if "velocity" not in state:
            state["velocity"] = grad.copy()
        else:
            state["velocity"] *= self.momentum
            state["velocity"] += grad
        param -= self.lr * state["velocity"]


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction, as torch.optim.Adam computes it:

        m = beta1 m + (1 - beta1) g            v = beta2 v + (1 - beta2) g^2
        param -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    Defaults are the DCGAN paper's: lr 2e-4, beta1 0.5.
    """

    def __init__(self, params, lr=2e-4, betas=(0.5, 0.999), eps=1e-8):
        super().__init__(params)
        self.lr, self.betas, self.eps = lr, tuple(betas), eps

    def step(self):
        """Every parameter's update, in one kernel launch on a GPU (kernels.adam_update_all)."""
        step = per_step(self._count_step)   # in a captured CUDA graph, counted before each replay
        params = [layer.params[name] for layer, name in self.slots]
        for state, param in zip(self.state, params):
            if "m" not in state:
                xp = backend.get_array_module(param)
                state["m"], state["v"] = xp.zeros_like(param), xp.zeros_like(param)
        # kernels/reference.py has the docstring's formula in NumPy, line by line
        kernels.adam_update_all(params, [layer.grads[name] for layer, name in self.slots],
                                [state["m"] for state in self.state], [state["v"] for state in self.state],
                                self.lr, *self.betas, self.eps, step)

    def _count_step(self):
        self.steps += 1
        return self.steps
