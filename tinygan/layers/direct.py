"""Convolutions straight from their definitions, in loops: slow, obviously right, and what the layers are
tested against (Conv2D and ConvTranspose2D must agree with these on every drawn shape)."""
import numpy as np


def conv2d_loops(x, W, b, stride=(1, 1), padding=(0, 0)):
    """PyTorch's Conv2d: y[n, o, i, j] = sum over c, u, v of W[o, c, u, v] * x_padded[n, c, i s + u, j s + v] + b[o]."""
    N, C, H, Wd = x.shape
    C_out, _, kh, kw = W.shape
    (sh, sw), (ph, pw) = stride, padding
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out_h, out_w = (H + 2 * ph - kh) // sh + 1, (Wd + 2 * pw - kw) // sw + 1
    y = np.zeros((N, C_out, out_h, out_w))
    for n, o, i, j in np.ndindex(y.shape):
        y[n, o, i, j] = np.sum(padded[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw] * W[o]) + b[o]
    return y


def conv_transpose2d_loops(x, W, b, stride=(1, 1), padding=(0, 0), output_padding=(0, 0)):
    """PyTorch's ConvTranspose2d: each input pixel scatters its kernel W[c], scaled by itself, into the output
    (the overlaps add up), then ``padding`` rows and columns are cut from each border."""
    N, C, H, Wd = x.shape
    _, C_out, kh, kw = W.shape
    (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
    full = np.zeros((N, C_out, (H - 1) * sh + kh + oph, (Wd - 1) * sw + kw + opw))
    for n, c, i, j in np.ndindex(x.shape):
        full[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += x[n, c, i, j] * W[c]
    out_h, out_w = full.shape[2] - 2 * ph, full.shape[3] - 2 * pw
    return full[:, :, ph:ph + out_h, pw:pw + out_w] + b.reshape(1, -1, 1, 1)
