"""The CUDA source of the GPU kernels, as CuPy ElementwiseKernel pieces.

Each entry is (input parameters, output parameters, body). CuPy runs the body
once per element of the output, with ``i`` that element's flat index; a
``raw`` parameter is a whole array indexed by hand, any other is the element
at ``i`` (or a scalar). Kept apart from cupy_gpu.py, which compiles them, so
that on machines without a GPU the tests can compile these bodies as host C++
(tests/cupy_stand_in, a stand-in for CuPy) and, where CuPy and its NVRTC are
installed, compile what CuPy writes out of them with CUDA's own compiler
(tests/test_cuda_source.py).

Batch normalisation needs per-channel sums as well: those are ReductionKernel
pieces (REDUCTIONS below), each reduced by SUM. The optimizers' kernels work
on a list of arrays at once: those are whole CUDA functions (MULTI_TENSOR).
"""
from .reference import DROPOUT_BITS

PREAMBLE = f"#define DROPOUT_BITS {DROPOUT_BITS}\n" + r"""
#ifndef __CUDACC__
#define __device__   // compiled as host C++ by the tests
#endif

// One term of the binary cross-entropy of logit x against target t, as
// losses.BCEWithLogits writes it: max(x, 0) - x t + log(1 + exp(-|x|)), with
// max(x, 0) - x t = coefficient * x, and 0 (not 0 * inf = NaN) where the
// coefficient is 0.
__device__ inline double bce_with_logits_term(double x, double t) {
    double coefficient = x >= 0 ? 1.0 - t : -t;
    return (coefficient == 0 ? 0.0 : coefficient * x) + log1p(exp(-fabs(x)));
}

// splitmix64's output function of (key, i), its top DROPOUT_BITS: the same bits as reference.random_bits.
__device__ inline unsigned long long dropout_bits(long long i, unsigned long long key) {
    unsigned long long z = (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ULL + key;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (z ^ (z >> 31)) >> (64 - DROPOUT_BITS);
}

// 1 / (1 + exp(-x)), exp only ever taken of -|x| (layers/activations.py, stable_sigmoid).
__device__ inline double stable_sigmoid(double x) {
    double e = exp(-fabs(x));
    return x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}
"""

GEOMETRY = ("int32 C, int32 H, int32 W, int32 kh, int32 kw, int32 N, int32 out_h, int32 out_w, "
            "int32 sh, int32 sw, int32 ph, int32 pw")

KERNELS = {
    "im2col": ("raw T x, " + GEOMETRY, "T col", """
    // i indexes col[c, ki, kj, n, y, x] in row-major order
    int x_ = i % out_w;
    int rest = i / out_w;
    int y = rest % out_h;  rest /= out_h;
    int n = rest % N;      rest /= N;
    int kj = rest % kw;    rest /= kw;
    int ki = rest % kh;
    int c = rest / kh;
    int row = y * sh + ki - ph;
    int column = x_ * sw + kj - pw;
    if (0 <= row && row < H && 0 <= column && column < W) {
        col = x[((n * C + c) * H + row) * W + column];
    } else {
        col = (T)0;
    }
    """),

    # col2im gathers per image pixel (as Chainer's GPU col2im does) instead of
    # scattering with atomics: deterministic, and the summation order is the
    # reference's, so the results agree bit for bit.
    "col2im": ("raw T col, " + GEOMETRY, "T x", """
    // i indexes x[n, c, row, column]; gather every column entry copied from this pixel
    int column = i % W;
    int row = (i / W) % H;
    int c = (i / (W * H)) % C;
    int n = i / (W * H * C);
    T total = (T)0;
    for (int ki = 0; ki < kh; ++ki) {
        int dy = row + ph - ki;
        if (dy < 0 || dy % sh != 0 || dy / sh >= out_h) continue;
        for (int kj = 0; kj < kw; ++kj) {
            int dx = column + pw - kj;
            if (dx < 0 || dx % sw != 0 || dx / sw >= out_w) continue;
            total += col[((((c * kh + ki) * kw + kj) * N + n) * out_h + dy / sh) * out_w + dx / sw];
        }
    }
    x = total;
    """),

    "leaky_relu": ("T x, T slope", "T y", "y = x > 0 ? x : x * slope"),

    "leaky_relu_backward": ("T dout, T x, T slope", "T dx", "dx = x > 0 ? dout : dout * slope"),

    "dropout": ("T x, uint64 key, uint64 threshold, T scale", "T y",
                "y = x * (dropout_bits(i, key) >= threshold ? scale : (T)0)"),

    # The same, its key read from the device: in a replayed CUDA graph the key changes at every
    # replay, where a kernel argument would stay the one it was captured with (cuda_graph.py).
    "dropout_per_step": ("T x, raw uint64 key, uint64 threshold, T scale", "T y",
                         "y = x * (dropout_bits(i, key[0]) >= threshold ? scale : (T)0)"),

    # Poisson counts from uniforms by inversion, as reference.poisson_from_uniform sums them: drawn
    # from CuPy's generator, the uniforms are captured in a CUDA graph, which CuPy's own Poisson draw
    # (it copies the rate from the host first) is not.
    "poisson_from_uniform": ("float64 u, float64 rate", "T k", """
    double p = exp(-rate), total = p;
    long long count = 0;
    while (total < u && p > 0) {
        ++count;
        p *= rate / count;
        total += p;
    }
    k = (T)count;
    """),

    # Batch normalisation, as the Numba kernels compute it: per-channel values
    # in double, the result rounded once to T. The per-channel arrays (mean,
    # inverse_std, gamma, ...) arrive as (C, 1) views that CuPy broadcasts
    # against the (N, C, M) batch. The mean and the two channel sums of
    # backward stay float64 arrays until the pass that reads them: x - mean and
    # dx are small differences when a channel's values are close (two images),
    # and a mean or a sum rounded to float32 first was off by up to 7e-5 there.
    # This pass also hands the mean back in T, for the running estimates.
    "batchnorm_inverse_std": ("T var, float64 mean, float64 eps", "T inverse_std, T rounded_mean", """
    inverse_std = 1.0 / sqrt((double)var + eps);
    rounded_mean = mean;
    """),

    "batchnorm_normalise": ("T x, float64 mean, T inverse_std, T gamma, T beta", "T y, T x_hat", """
    double normalised = ((double)x - mean) * inverse_std;
    x_hat = normalised;
    y = normalised * gamma + beta;
    """),

    # The running estimates, in place (see layers/batchnorm.py); unbias = m / (m - 1).
    "batchnorm_update_running": ("T mean, T var, float64 momentum, float64 unbias", "T running_mean, T running_var", """
    running_mean = (1 - momentum) * running_mean + momentum * mean;
    running_var = (1 - momentum) * running_var + momentum * var * unbias;
    """),

    # BCEWithLogits' gradient: dL/dx = (sigmoid(x) - t) / count for the mean over count terms.
    "bce_with_logits_gradient": ("T x, T t, float64 count", "T dx", "dx = (stable_sigmoid(x) - t) / count"),

    # dL/dx = gamma r (dy - mean(dy) - x_hat mean(dy x_hat)), r = 1 / sqrt(var + eps);
    # dbeta and dgamma are the two channel sums.
    "batchnorm_input_gradient": ("T dy, T x_hat, T gamma, T inverse_std, float64 dbeta, float64 dgamma, float64 count",
                                 "T dx", """
    dx = (double)gamma * inverse_std * ((double)dy - dbeta / count - (double)x_hat * (dgamma / count));
    """),
}

# A per-channel sum: CuPy's ReductionKernel maps every element with the map
# expression, combines the mapped values pairwise with SUM's reduce expression
# (a tree over a block's threads, so the order is not the reference's), and
# hands the total ``a`` to the post-map expression, once per channel. The sum
# runs in double, so a float32 batch loses no digits to a long sum.
SUM = {"reduce_expr": "a + b", "identity": "0", "reduce_type": "double"}

# name: (input parameters, output parameter, map expression, post-map expression)
REDUCTIONS = {
    "channel_mean": ("T x, float64 count", "float64 mean", "x", "mean = a / count"),
    "channel_variance": ("T x, float64 mean, float64 count", "T var", "((double)x - mean) * ((double)x - mean)",
                         "var = a / count"),
    "channel_sum": ("T dy", "float64 total", "dy", "total = a"),
    "channel_dot": ("T dy, T x_hat", "float64 total", "(double)dy * x_hat", "total = a"),
    # BCEWithLogits' mean loss, reduced over every axis: the whole loss in one launch.
    "bce_with_logits_mean": ("T x, T t, float64 count", "float64 loss", "bce_with_logits_term(x, t)", "loss = a / count"),
}

# Kernels over a list of arrays in one launch, for the optimizers: an Adam step
# over the dcgan's generator is one launch instead of one per parameter (the
# aim of PyTorch's multi_tensor_apply). ``table`` holds the arrays' device
# addresses, one row per role (param, grad, m, v), one column per array, and
# ``ends`` the running total of their sizes. Every thread takes elements i,
# i + all threads, ... of the concatenation of the arrays, and finds the array
# of element i by binary search in ``ends``. The arrays are C-contiguous and of
# type T (defined before this source, once for float and once for double).
MULTI_TENSOR = r"""
// Element i of the arrays' concatenation is element j of array a.
__device__ void locate(long long i, const long long* ends, int arrays, int& a, long long& j) {
    int low = 0, high = arrays - 1;
    while (low < high) {
        int middle = (low + high) / 2;
        if (i < ends[middle]) high = middle; else low = middle + 1;
    }
    a = low;
    j = i - (a > 0 ? ends[a - 1] : 0);
}

// One Adam step on every parameter (see optimizers.Adam). 1 - beta comes in
// computed on the host in float64: in float32, 1 - 0.999f is off by 5e-5 relative.
__device__ void adam_step(const unsigned long long* table, const long long* ends, int arrays,
        T step_size, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T root_correction2, T eps) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < ends[arrays - 1];
         i += (long long)gridDim.x * blockDim.x) {
        int a; long long j;
        locate(i, ends, arrays, a, j);
        T* param = (T*)table[a];
        const T grad = ((const T*)table[arrays + a])[j];
        T* m = (T*)table[2 * arrays + a];
        T* v = (T*)table[3 * arrays + a];
        m[j] = beta1 * m[j] + one_minus_beta1 * grad;
        v[j] = beta2 * v[j] + one_minus_beta2 * grad * grad;
        param[j] -= step_size * m[j] / (sqrt(v[j]) / root_correction2 + eps);
    }
}

extern "C" __global__ void adam_update_all(const unsigned long long* table, const long long* ends, int arrays,
        T step_size, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T root_correction2, T eps) {
    adam_step(table, ends, arrays, step_size, beta1, one_minus_beta1, beta2, one_minus_beta2, root_correction2, eps);
}

// The same, with the two numbers that change from step to step read from the device, as
// corrections[0] = step_size and corrections[1] = root_correction2 (for a CUDA graph: cuda_graph.py).
extern "C" __global__ void adam_update_all_per_step(const unsigned long long* table, const long long* ends,
        int arrays, const double* corrections, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T eps) {
    adam_step(table, ends, arrays, (T)corrections[0], beta1, one_minus_beta1, beta2, one_minus_beta2,
         (T)corrections[1], eps);
}

// Every array set to value (zero_grad).
extern "C" __global__ void fill_all(const unsigned long long* table, const long long* ends, int arrays, T value) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < ends[arrays - 1];
         i += (long long)gridDim.x * blockDim.x) {
        int a; long long j;
        locate(i, ends, arrays, a, j);
        ((T*)table[a])[j] = value;
    }
}

// average = decay average + weight param for each (average, param) pair: the generator's weight average.
__device__ void weight_average(const unsigned long long* table, const long long* ends, int arrays, T decay, T weight) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < ends[arrays - 1];
         i += (long long)gridDim.x * blockDim.x) {
        int a; long long j;
        locate(i, ends, arrays, a, j);
        T* average = (T*)table[a];
        average[j] = average[j] * decay + weight * ((const T*)table[arrays + a])[j];
    }
}

extern "C" __global__ void average_all(const unsigned long long* table, const long long* ends, int arrays,
        T decay, T weight) {
    weight_average(table, ends, arrays, decay, weight);
}

// The same, the decay read from the device (it warms up over the first steps; cuda_graph.py).
extern "C" __global__ void average_all_per_step(const unsigned long long* table, const long long* ends,
        int arrays, const double* decay) {
    weight_average(table, ends, arrays, (T)decay[0], (T)(1.0 - decay[0]));
}
"""
