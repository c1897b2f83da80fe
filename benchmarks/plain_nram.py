"""A plain, hand-written PyTorch NRAM with the paper's 14 gates: the baseline `bench_step.py` compares with.

Written the way a researcher would write it from the paper alone, with the efficient fuzzy forms the paper
notes list: roll for inc/dec, circular convolution for add/sub (FFT from M = 32, else a gathered circulant),
cumulative sums for the comparisons and min/max, one softmax per distribution. It shares no code with
nramdsl, so a comparison measures nramdsl's compiled machine against an independent implementation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GATES = ("read", "zero", "one", "two", "inc", "add", "sub", "dec", "lt", "le", "eq", "min", "max", "write")
ARITY = {"read": 1, "zero": 0, "one": 0, "two": 0, "inc": 1, "add": 2, "sub": 2, "dec": 1, "lt": 2, "le": 2,
         "eq": 2, "min": 2, "max": 2, "write": 2}


def _conv(a: torch.Tensor, b: torch.Tensor, sub: bool) -> torch.Tensor:
    """P(a + b = c) or P(a - b = c) mod M."""
    M = a.shape[-1]
    if M >= 32:
        fb = torch.fft.rfft(b)
        return torch.fft.irfft(torch.fft.rfft(a) * (fb.conj() if sub else fb), n=M).clamp(min=0)
    idx = torch.arange(M, device=a.device)
    # out[c] = sum_x a[x] * b[c - x]  (add)   or   sum_x a[x] * b[x - c]  (sub): b gathered into a circulant
    index = (idx[None, :] - idx[:, None]) % M if sub else (idx[:, None] - idx[None, :]) % M  # [c, x]
    return torch.einsum("nx,ncx->nc", a, b[:, index])


def _compare(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "eq":
        p1 = (a * b).sum(-1)
    else:
        cb = b.cumsum(-1)
        above = cb[:, -1:] - cb + (b if kind == "le" else 0)  # P(B > x) or P(B >= x)
        p1 = (a * above).sum(-1)
    out = torch.zeros_like(a)
    out[:, 0] = 1 - p1
    out[:, 1] = p1
    return out


def _min(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ca, cb = a.cumsum(-1), b.cumsum(-1)
    return a * (cb[:, -1:] - cb) + b * (ca[:, -1:] - ca + a)


def _max(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ca, cb = a.cumsum(-1), b.cumsum(-1)
    return a * (cb - b) + b * ca


class PlainNRAM(nn.Module):
    def __init__(self, R: int = 4, hidden: int = 64) -> None:
        super().__init__()
        self.R = R
        sizes = []
        for i, g in enumerate(GATES):
            sizes += [R + i] * ARITY[g]
        sizes += [R + len(GATES)] * R
        self.sizes = sizes
        self.net = nn.Sequential(nn.Linear(R, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, sum(sizes) + 1))

    def forward(self, memory: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, T: int) -> torch.Tensor:
        B, M = memory.shape
        mem = F.one_hot(memory, M).float()
        regs = torch.zeros(B, self.R, M)
        regs[:, :, 0] = 1
        remaining = torch.ones(B)
        loss = torch.zeros(B)
        for t in range(T):
            logits = self.net(regs[:, :, 0])
            parts = list(torch.split(logits[:, :-1], self.sizes, dim=1))
            stop = torch.sigmoid(logits[:, -1])
            pool = list(regs.unbind(1))
            for g in GATES:
                args: list[torch.Tensor] = []
                if ARITY[g]:  # every argument of the gate at once: [B, arity, R + i] weights x [B, R + i, M] pool
                    w = torch.softmax(torch.stack([parts.pop(0) for _ in range(ARITY[g])], 1), dim=2)
                    args = list(torch.bmm(w, torch.stack(pool, 1)).unbind(1))
                if g == "read":
                    out = torch.bmm(args[0].unsqueeze(1), mem)[:, 0]
                elif g in ("zero", "one", "two"):
                    out = F.one_hot(torch.full((B,), ("zero", "one", "two").index(g)), M).float()
                elif g in ("inc", "dec"):
                    out = torch.roll(args[0], 1 if g == "inc" else -1, dims=1)
                elif g in ("add", "sub"):
                    out = _conv(args[0], args[1], g == "sub")
                elif g in ("lt", "le", "eq"):
                    out = _compare(args[0], args[1], g)
                elif g == "min":
                    out = _min(*args)
                elif g == "max":
                    out = _max(*args)
                else:  # write
                    p, v = args
                    mem = (1 - p).unsqueeze(2) * mem + p.unsqueeze(2) * v.unsqueeze(1)
                    out = F.one_hot(torch.zeros(B, dtype=torch.long), M).float()
                pool.append(out)
            w = torch.softmax(torch.stack([parts.pop(0) for _ in range(self.R)], 1), dim=2)
            regs = torch.bmm(w, torch.stack(pool, 1))
            p_t = remaining if t == T - 1 else stop * remaining
            remaining = remaining * (1 - stop)
            prob = mem.gather(2, target.unsqueeze(2)).squeeze(2)
            loss = loss + p_t * -(torch.log(prob.clamp_min(1e-6)) * mask).sum(1)
        return loss.mean()
