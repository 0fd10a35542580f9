"""One GAN: a generator, a discriminator, their optimizers and the training step.

The step (the trainer and the benchmarks run exactly this):

1. Discriminator, ``d_steps`` times: on a real batch with target 1 (or
   1 - label_smoothing) and on a generated batch with target 0, gradients of
   both summed, one Adam step. Real and fake go through D as separate batches,
   so BatchNorm normalises each with its own statistics.
2. Generator: the non-saturating loss -log D(G(z)), i.e. BCE of D's logits on
   the last generated batch against target 1. Its gradient flows back through
   D into G; D skips its own parameter gradients on the way (requires_grad).
Neither network computes a gradient for its input data (the images, the
noise): Sequential.backward(..., input_grad=False).

``label_flip`` is the "noisy labels" trick: each D target is swapped for the
other class's target with that probability.

``ema`` > 0 keeps an exponential moving average of G's weights (Yazici et
al., 2019), the generator that samples, grids and eval use: GAN training
oscillates around good weights, and the average sits nearer them than any
single iterate. Two details decide whether it helps (measured with a PyTorch
DCGAN of this shape: without them it made the samples worse):

* the decay is warmed up, min(ema, (1 + t) / (10 + t)) at G step t = 0, 1, ...,
  so the average forgets the random initial weights within the first
  hundreds of steps instead of the first thousands;
* BatchNorm's running statistics belong to the weights that produced them:
  the live generator's do not fit the averaged weights. They are recomputed
  for the average (``refresh_average_statistics``) from fresh noise before
  the average is used, as torch.optim.swa_utils.update_bn does for SWA.
"""
import copy

import numpy as np

from . import backend, kernels
from .conditional import CLASSES, Conditioned
from .cuda_graph import per_step
from .layers import BatchNorm, Dropout
from .layers.batchnorm import running_statistics_frozen
from .losses import BCEWithLogits
from .optimizers import Adam

NOISE_KINDS = ("normal", "uniform", "poisson")
STATISTICS_BATCHES = 32   # noise batches that re-estimate the averaged generator's BatchNorm statistics


class GAN:
    def __init__(self, generator, discriminator, z_dim=100, lr=2e-4, betas=(0.5, 0.999), noise="normal",
                 label_smoothing=0.0, label_flip=0.0, d_steps=1, ema=0.0, lr_d=None, lr_g=None,
                 poisson_rate=1.0, standardize_noise=True):
        if noise not in NOISE_KINDS:
            raise ValueError(f"unknown noise {noise!r}: choose one of {', '.join(NOISE_KINDS)}")
        if not 0 <= label_smoothing < 1 or not 0 <= label_flip < 1 or d_steps < 1:
            raise ValueError("need 0 <= label_smoothing < 1, 0 <= label_flip < 1 and d_steps >= 1")
        if not 0 <= ema < 1:
            raise ValueError(f"the EMA decay must be in [0, 1) (0 turns it off), got {ema}")
        if not poisson_rate > 0:
            raise ValueError(f"the Poisson rate must be positive, got {poisson_rate}")
        self.generator, self.discriminator = generator, discriminator
        self.z_dim, self.noise = z_dim, noise
        self.poisson_rate, self.standardize_noise = poisson_rate, standardize_noise
        self.label_smoothing, self.label_flip, self.d_steps = label_smoothing, label_flip, d_steps
        # Two time-scale update rule (Heusel et al., 2017): D and G may learn at different rates.
        self.generator_optimizer = Adam(generator.parameters(), lr=lr if lr_g is None else lr_g, betas=betas)
        self.discriminator_optimizer = Adam(discriminator.parameters(), lr=lr if lr_d is None else lr_d,
                                            betas=betas)
        self.loss = BCEWithLogits()
        self.ema = ema
        self.average_generator = copy.deepcopy(generator) if ema > 0 else None
        self.conditional = isinstance(generator, Conditioned)

    @property
    def sampler(self):
        """The generator that makes the pictures: the weight average when there is one, else G itself."""
        return self.average_generator if self.average_generator is not None else self.generator

    @property
    def poisson_by_inversion(self):
        """Whether a GPU draws this GAN's Poisson counts from its uniforms (kernels.poisson_from_uniform), as
        a CUDA graph can capture, rather than by CuPy's Poisson draw (rates above 500)."""
        return self.poisson_rate <= kernels.reference.POISSON_INVERSION_MAX_RATE

    def sample_noise(self, n, rng=None):
        """z, (n, z_dim), from ``rng`` (default: the current device's generator).

        normal: N(0, 1); uniform: U(-1, 1); poisson: (k - rate) / sqrt(rate) for
        k ~ Poisson(rate), which has mean 0 and variance 1 like the others
        (standardize_noise=False keeps the raw counts k). On a GPU the counts
        come from the device's uniforms by inversion (kernels.poisson_from_uniform),
        which a CUDA graph can capture, up to a rate of 500.
        """
        rng, dtype = rng or backend.rng(), backend.get_default_dtype()
        if self.noise == "normal":
            return rng.standard_normal((n, self.z_dim), dtype=dtype)
        if self.noise == "uniform":
            return (rng.random((n, self.z_dim), dtype=dtype) * 2 - 1).astype(dtype, copy=False)
        if isinstance(rng, np.random.Generator) or not self.poisson_by_inversion:
            counts = rng.poisson(self.poisson_rate, (n, self.z_dim)).astype(dtype)
        else:   # on the device, from its uniforms: CuPy's own Poisson draw copies the rate from the host each time
            counts = kernels.poisson_from_uniform(rng.random((n, self.z_dim)), self.poisson_rate, dtype)
        if not self.standardize_noise:
            return counts
        return ((counts - self.poisson_rate) / float(np.sqrt(self.poisson_rate))).astype(dtype, copy=False)

    def sample_labels(self, n, rng=None):
        """Uniform random classes (n,) for conditional fakes, from ``rng`` (default: the device's generator)."""
        return (rng or backend.rng()).integers(0, CLASSES, n)

    def discriminator_targets(self, n, real):
        """D's targets for a batch of n: 1 - label_smoothing for real images, 0 for fakes, each swapped
        with probability label_flip. Without flips one number serves the batch (no array to fill)."""
        xp, dtype = backend.xp(), backend.get_default_dtype()
        real_target, fake_target = 1.0 - self.label_smoothing, 0.0
        if self.label_flip == 0:
            return real_target if real else fake_target
        targets = xp.full((n, 1), real_target if real else fake_target, dtype=dtype)
        flipped = backend.rng().random((n, 1), dtype=dtype) < self.label_flip
        return xp.where(flipped, fake_target if real else real_target, targets).astype(dtype)

    def check_labels(self, labels):
        """Refuse a training batch without its labels where the GAN is conditional."""
        if self.conditional and labels is None:
            raise ValueError("a conditional GAN trains on labelled images: pass the batch's labels")

    def train_step(self, real, labels=None, read_losses=True):
        """One D update (or d_steps of them) and one G update on a real batch; returns (d_loss, g_loss).

        A conditional GAN also takes the real images' ``labels``; its fakes are drawn for random classes.
        The losses are Python floats; with read_losses=False they are float64 0-d arrays left on the
        device, so that a GPU step ends without the host waiting for it (float() reads them later).
        """
        G, D, loss = self.generator, self.discriminator, self.loss
        n = real.shape[0]
        self.check_labels(labels)
        for _ in range(self.d_steps):
            self.discriminator_optimizer.zero_grad()
            if self.conditional:
                D.condition(labels)
            d_loss = loss.forward_array(D.forward(real, training=True), self.discriminator_targets(n, real=True))
            D.backward(loss.backward(), input_grad=False)   # no gradient for the images: nothing learns them
            if self.conditional:
                fake_labels = self.sample_labels(n)
                G.condition(fake_labels), D.condition(fake_labels)
            fake = G.forward(self.sample_noise(n), training=True)
            d_loss += loss.forward_array(D.forward(fake, training=True), self.discriminator_targets(n, real=False))
            D.backward(loss.backward(), input_grad=False)
            self.discriminator_optimizer.step()

        self.generator_optimizer.zero_grad()
        g_loss = loss.forward_array(D.forward(fake, training=True), 1.0)
        D.requires_grad_(False)   # D only passes the gradient on to G; its own would be thrown away
        try:
            G.backward(D.backward(loss.backward()), input_grad=False)   # nor for the noise
        finally:
            D.requires_grad_(True)
        self.generator_optimizer.step()
        if self.average_generator is not None:
            self._update_average()
        return (float(d_loss), float(g_loss)) if read_losses else (d_loss, g_loss)

    def _update_average(self):
        """average = decay average + (1 - decay) G, with the decay warmed up over the first steps."""
        decay = per_step(self._average_decay)   # in a captured CUDA graph, worked out before each replay
        kernels.average_all([average for _, _, average, _ in self.average_generator.parameters()],
                            [param for _, _, param, _ in self.generator.parameters()], decay)

    def _average_decay(self):
        t = self.generator_optimizer.steps - 1     # this G step's index: 0, 1, 2, ... (resumes exactly)
        return min(self.ema, (1 + t) / (10 + t))

    def refresh_average_statistics(self, rng, batch_size=64, batches=STATISTICS_BATCHES):
        """Re-estimate the averaged generator's BatchNorm running statistics from fresh noise drawn from ``rng``.

        Each BatchNorm's running mean and variance become the plain average
        over ``batches`` training-mode batches (momentum 1/(k+1) for batch k).
        """
        norms = [layer for layer in self.average_generator or [] if isinstance(layer, BatchNorm)]
        if not norms:
            return
        saved = [layer.momentum for layer in norms]
        try:
            for k in range(batches):
                for layer in norms:
                    layer.momentum = 1.0 / (k + 1)     # k = 0 replaces the old estimate outright
                if self.conditional:
                    self.average_generator.condition(backend.to_device(self.sample_labels(batch_size, rng)))
                self.average_generator.forward(backend.to_device(self.sample_noise(batch_size, rng)), training=True)
        finally:
            for layer, momentum in zip(norms, saved):
                layer.momentum = momentum

    def generate(self, z, batch_size=500, generator=None, labels=None):
        """sampler(z) in eval mode (BatchNorm's running statistics), in batches; a device array.

        ``generator``: another network to run instead (the live G, for D's accuracy). ``labels``: the
        classes to draw, for a conditional GAN (default: 0, 1, ..., 9, 0, 1, ... in turn)."""
        xp = backend.get_array_module(z)
        generator = generator or self.sampler
        if self.conditional and labels is None:
            labels = xp.arange(len(z)) % CLASSES
        pictures = []
        for start in range(0, len(z), batch_size):
            if self.conditional:
                generator.condition(xp.asarray(labels[start:start + batch_size]))
            pictures.append(generator.forward(z[start:start + batch_size], training=False))
        return xp.concatenate(pictures)

    def discriminator_accuracy(self, real_images, n_fake, batch_size=64, real_labels=None):
        """Fraction of real images D calls real (logit > 0) and of n_fake generated ones it calls fake.

        D is asked as it is trained: on batches that are all real or all fake,
        its BatchNorm normalising each batch by the batch's own statistics, but
        with dropout off and its running statistics left alone. In eval mode
        the running statistics, which average real and fake batches, shift its
        verdicts: after two dcgan epochs on MNIST it called 99.85% of the real
        test images fake that way.
        """
        D = self.discriminator
        dropouts = [layer for layer in D if isinstance(layer, Dropout)]
        saved_p = [layer.p for layer in dropouts]

        def fraction_real(images, labels=None):
            calls = []
            for start in range(0, len(images), batch_size):
                if self.conditional:
                    D.condition(labels[start:start + batch_size])
                calls.append(D.forward(images[start:start + batch_size], training=True) > 0)
            return float(sum(int(call.sum()) for call in calls)) / len(images)

        try:
            for layer in dropouts:
                layer.p = 0.0
            with running_statistics_frozen(D):
                accuracy_real = fraction_real(real_images, real_labels)
                fake_labels = self.sample_labels(n_fake) if self.conditional else None
                fakes = self.generate(self.sample_noise(n_fake), generator=self.generator, labels=fake_labels)
                accuracy_fake = 1.0 - fraction_real(fakes, fake_labels)
        finally:
            for layer, p in zip(dropouts, saved_p):
                layer.p = p
        return accuracy_real, accuracy_fake

    def _parts(self):
        parts = [("generator", self.generator), ("discriminator", self.discriminator),
                 ("generator_optimizer", self.generator_optimizer),
                 ("discriminator_optimizer", self.discriminator_optimizer)]
        if self.average_generator is not None:
            parts.append(("average_generator", self.average_generator))
        return parts

    def state_dict(self):
        """Both networks, both optimizers and the averaged generator, as one flat dict of NumPy arrays."""
        state = {}
        for prefix, part in self._parts():
            state.update({f"{prefix}/{key}": np.asarray(value) for key, value in part.state_dict().items()})
        return state

    def load_state_dict(self, state):
        for prefix, part in self._parts():
            try:
                part.load_state_dict({key[len(prefix) + 1:]: state[key] for key in state
                                      if key.startswith(prefix + "/")})
            except (ValueError, KeyError) as error:
                raise ValueError(f"{prefix}: {error}") from None
