"""Hand-written kernels for examples/custom.nram (loaded by `via "mykernels:NAME"`).

A kernel receives one distribution per gate argument, tensors [..., M] whose rows sum to 1, and returns
the Eq. 2 lift of the gate's integer definition: P(out = c) = Σ_{a,b: f(a,b) = c} P(A = a)·P(B = b).
"""

import torch


def mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Lift of (a * b) mod M: out[..., (i*j) % M] += a[..., i] * b[..., j], exactly, via index_add."""
    M = a.shape[-1]
    values = torch.arange(M, device=a.device)
    target = (values[:, None] * values[None, :]) % M  # [M, M]: where mass from (i, j) goes
    joint = a[..., :, None] * b[..., None, :]  # [..., M, M]: P(A = i) P(B = j)
    out = torch.zeros_like(a)
    return out.index_add(-1, target.reshape(-1), joint.reshape(*joint.shape[:-2], M * M))
