"""Sequential: a chain of layers, and the one place a model's state is gathered."""
from . import backend
from .backend import get_array_module


class Sequential:
    """y = layer_k(... layer_2(layer_1(x))); backward runs the chain in reverse.

    ``parameters()`` yields (layer, name, param, grad) for every trainable array,
    which is what the optimizers take. ``state_dict()`` names every parameter
    and buffer "<layer index>.<name>" as a NumPy array, so
    ``numpy.savez(path, **model.state_dict())`` and
    ``model.load_state_dict(numpy.load(path))`` round-trip a model, also from a
    GPU run to a CPU one.
    """

    def __init__(self, layers):
        self.layers = list(layers)

    def forward(self, x, training=True):
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    __call__ = forward

    def backward(self, dout, input_grad=True):
        """dL/d(input) from dL/d(output), filling every layer's grads on the way.

        input_grad=False: the input is data (images, noise) whose gradient
        nobody needs, and None is returned. The layers in front of the first
        one with parameters then have nothing to do (they only pass dL/dx
        back), and that first one is told it may skip dL/dx.
        """
        stop = 0   # backward runs layers[stop:], last to first
        if not input_grad:
            stop = next((index for index, layer in enumerate(self.layers) if layer.params), len(self.layers))
        for layer in reversed(self.layers[stop + 1:]):
            dout = layer.backward(dout)
        if stop == len(self.layers):
            return None
        layer = self.layers[stop]
        layer.needs_input_grad = input_grad
        try:
            dx = layer.backward(dout)
        finally:
            layer.needs_input_grad = True
        return dx if input_grad else None

    def requires_grad_(self, requires_grad=True):
        """Switch every layer's parameter gradients on or off (as PyTorch's Module.requires_grad_); returns self."""
        for layer in self.layers:
            layer.requires_grad = requires_grad
        return self

    def parameters(self):
        for layer in self.layers:
            for name, param in layer.params.items():
                yield layer, name, param, layer.grads[name]

    def num_parameters(self):
        return sum(int(param.size) for _, _, param, _ in self.parameters())

    def zero_grad(self):
        for layer in self.layers:
            layer.zero_grad()

    def to(self, device):
        """Move every layer to 'cpu' or 'gpu'; returns self. Build optimizers after moving."""
        for layer in self.layers:
            layer.to(device)
        return self

    def _stores(self):
        for index, layer in enumerate(self.layers):
            for store in (layer.params, layer.buffers):
                yield index, store

    def state_dict(self):
        return {f"{index}.{name}": backend.numpy_copy(value)
                for index, store in self._stores() for name, value in store.items()}

    def load_state_dict(self, state):
        """Copy saved arrays into this model, in place; keys and shapes must match exactly."""
        expected = {f"{index}.{name}": (store, name) for index, store in self._stores() for name in store}
        given = set(state.keys())
        if given != set(expected):
            missing, unexpected = sorted(set(expected) - given), sorted(given - set(expected))
            raise ValueError(f"state does not fit this model: missing {missing or 'nothing'}, "
                             f"unexpected {unexpected or 'nothing'}; was it saved from another architecture?")
        for key, (store, name) in expected.items():
            value = state[key]
            if not hasattr(value, "dtype") or value.dtype.kind not in "iuf":
                raise ValueError(f"state entry {key!r} holds {getattr(value, 'dtype', type(value).__name__)} "
                                 f"values; a model's parameters and buffers are real numbers")
            if value.dtype.kind == "f" and not bool(get_array_module(value).isfinite(value).all()):
                raise ValueError(f"state entry {key!r} holds NaN or infinite values")
            if tuple(value.shape) != tuple(store[name].shape):
                raise ValueError(f"state entry {key!r} has shape {tuple(value.shape)}, "
                                 f"the model expects {tuple(store[name].shape)}")
            store[name][...] = backend.to_device(value, backend.device_of(store[name]))

    def __iter__(self):
        return iter(self.layers)

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    def __repr__(self):
        lines = [f"  ({index}) {layer!r}" for index, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"
