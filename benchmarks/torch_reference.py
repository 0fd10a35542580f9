"""The same networks and training step in PyTorch: an optional reference column for the benchmarks.

PyTorch is never a dependency of tinygan or of its tests; the benchmarks use
this module only where torch happens to be installed. ``to_torch`` translates
a tinygan Sequential layer by layer (copying its weights), so both frameworks
time exactly the same architecture.
"""
import numpy as np
import torch
from torch import nn

from tinygan import backend, layers


def torch_layer(layer, input_ndim):
    """The nn.Module equal to one tinygan layer (same weights), given the rank of its input."""
    p = {name: torch.from_numpy(backend.as_numpy(value).copy()) for name, value in layer.params.items()}
    if isinstance(layer, layers.Dense):
        module = nn.Linear(layer.in_features, layer.out_features, bias="b" in p)
        module.weight.data = p["W"].T.contiguous()
    elif isinstance(layer, layers.Conv2D):
        module = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                           bias="b" in p)
        module.weight.data = p["W"]
    elif isinstance(layer, layers.ConvTranspose2D):
        module = nn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                                    layer.padding, layer.output_padding, bias="b" in p)
        module.weight.data = p["W"]
    elif isinstance(layer, layers.BatchNorm):
        kind = nn.BatchNorm1d if input_ndim == 2 else nn.BatchNorm2d
        module = kind(layer.num_features, eps=layer.eps, momentum=layer.momentum, affine="gamma" in p)
        if "gamma" in p:
            module.weight.data, module.bias.data = p["gamma"], p["beta"]
    elif isinstance(layer, layers.LeakyReLU):
        module = nn.LeakyReLU(layer.negative_slope)
    elif isinstance(layer, layers.ReLU):
        module = nn.ReLU()
    elif isinstance(layer, layers.Tanh):
        module = nn.Tanh()
    elif isinstance(layer, layers.Sigmoid):
        module = nn.Sigmoid()
    elif isinstance(layer, layers.Dropout):
        module = nn.Dropout(layer.p)
    elif isinstance(layer, layers.Flatten):
        module = nn.Flatten()
    elif isinstance(layer, layers.Reshape):
        module = nn.Unflatten(1, layer.shape)
    elif isinstance(layer, layers.UpSample2D):
        module = nn.Upsample(scale_factor=layer.scale, mode="nearest")
    else:
        raise TypeError(f"no PyTorch translation for {type(layer).__name__}")
    if "b" in p:
        module.bias.data = p["b"]
    return module


def output_ndim(layer, input_ndim):
    if isinstance(layer, (layers.Dense, layers.Flatten)):
        return 2
    if isinstance(layer, layers.Reshape):
        return 1 + len(layer.shape)
    return input_ndim


def to_torch(model, input_ndim, device="cpu"):
    """An nn.Sequential equal to a tinygan Sequential, with the same weights."""
    modules = []
    for layer in model:
        modules.append(torch_layer(layer, input_ndim))
        input_ndim = output_ndim(layer, input_ndim)
    return nn.Sequential(*modules).to(device)


class TorchGAN:
    """tinygan's GAN.train_step, written in PyTorch (eager mode)."""

    def __init__(self, generator, discriminator, z_dim=100, lr=2e-4, betas=(0.5, 0.999), device="cpu"):
        self.generator, self.discriminator = generator, discriminator
        self.z_dim, self.device = z_dim, device
        self.generator_optimizer = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
        self.discriminator_optimizer = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas)
        self.loss = nn.BCEWithLogitsLoss()

    def standard_step(self, real):
        """The step as PyTorch's users write it (pytorch/examples' DCGAN): one summed D loss on the real batch
        and the detached fake one, one backward; then G through D, D's weight gradients computed and dropped."""
        n = real.shape[0]
        ones = torch.ones(n, 1, device=self.device)
        zeros = torch.zeros(n, 1, device=self.device)
        fake = self.generator(torch.randn(n, self.z_dim, device=self.device))
        self.discriminator_optimizer.zero_grad()
        d_loss = self.loss(self.discriminator(real), ones) + self.loss(self.discriminator(fake.detach()), zeros)
        d_loss.backward()
        self.discriminator_optimizer.step()
        self.generator_optimizer.zero_grad()
        g_loss = self.loss(self.discriminator(fake), ones)
        g_loss.backward()
        self.generator_optimizer.step()
        return d_loss, g_loss

    def train_step(self, real, z=None):
        """tinygan's GAN.train_step translated: two D backward passes, D's gradients switched off for G's step."""
        n = real.shape[0]
        ones = torch.ones(n, 1, device=self.device)
        zeros = torch.zeros(n, 1, device=self.device)
        if z is None:
            z = torch.randn(n, self.z_dim, device=self.device)
        self.discriminator_optimizer.zero_grad()
        d_loss_real = self.loss(self.discriminator(real), ones)
        d_loss_real.backward()
        fake = self.generator(z)
        d_loss_fake = self.loss(self.discriminator(fake.detach()), zeros)
        d_loss_fake.backward()
        self.discriminator_optimizer.step()
        self.generator_optimizer.zero_grad()
        self.discriminator.requires_grad_(False)   # as tinygan's step: no gradients for D's weights here
        g_loss = self.loss(self.discriminator(fake), ones)
        g_loss.backward()
        self.discriminator.requires_grad_(True)
        self.generator_optimizer.step()
        return d_loss_real + d_loss_fake, g_loss


def tensor(array, device="cpu"):
    return torch.from_numpy(np.ascontiguousarray(backend.as_numpy(array))).to(device)
