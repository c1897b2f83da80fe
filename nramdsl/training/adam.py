"""Adam for stacked members: each member's rows are updated exactly as `torch.optim.Adam` would update a
single run's parameters, with the member's own step count and learning rate.

Adam is element-wise, so a population's update is K independent updates. What a single shared
`torch.optim.Adam` cannot do is keep members apart in time: it has one step count per tensor (its bias
correction would be wrong for a member that skipped an update), and it moves a member whose gradient is 0
(its momentum), so a member that has stopped would drift. Here a member updates only when `mask` says so.
The arithmetic follows torch's single-tensor Adam, step by step, so that in float64 a member's weights
match a single run's to rounding.
"""

from __future__ import annotations

from typing import Any

import torch

BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults [ours: the paper reports none]
EPS = 1e-8


class MemberAdam:
    def __init__(self, params: list[torch.Tensor], members: int) -> None:
        self.params = params
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.steps = [0] * members  # per member: updates made

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lrs: list[float], mask: torch.Tensor) -> torch.Tensor:
        """Update the members where `mask` [K] is True (each with its own lr). A member whose new weights
        would not be finite is left as it was (its update overflowed); returns the mask of members updated."""
        beta1, beta2 = BETAS
        members = mask.nonzero().flatten().tolist()
        if not members:
            return mask.clone()
        rows = torch.tensor(members, device=self.params[0].device)
        new: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        finite = torch.ones(len(members), dtype=torch.bool, device=rows.device)
        steps = [self.steps[k] + 1 for k in members]
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            grad = p.grad.index_select(0, rows) if p.grad is not None else torch.zeros_like(p.index_select(0, rows))
            shape = (len(members),) + (1,) * (p.dim() - 1)
            m_new = torch.lerp(m.index_select(0, rows), grad, 1 - beta1)
            v_new = v.index_select(0, rows).mul(beta2).addcmul(grad, grad, value=1 - beta2)
            step_size = torch.tensor([lrs[k] / (1 - beta1**s) for k, s in zip(members, steps)], dtype=p.dtype,
                                     device=p.device).view(shape)
            bias2_sqrt = torch.tensor([(1 - beta2**s) ** 0.5 for s in steps], dtype=p.dtype,
                                      device=p.device).view(shape)
            denom = (v_new.sqrt() / bias2_sqrt).add(EPS)
            p_new = p.index_select(0, rows) - (m_new / denom) * step_size
            finite &= torch.isfinite(p_new).flatten(1).all(dim=1)
            new.append((m_new, v_new, p_new))
        keep = finite.nonzero().flatten()
        updated = torch.zeros_like(mask)
        if keep.numel():
            at = rows.index_select(0, keep)
            for (p, m, v), (m_new, v_new, p_new) in zip(zip(self.params, self.exp_avg, self.exp_avg_sq), new):
                m.index_copy_(0, at, m_new.index_select(0, keep))
                v.index_copy_(0, at, v_new.index_select(0, keep))
                p.index_copy_(0, at, p_new.index_select(0, keep))
            for i in keep.tolist():
                self.steps[members[i]] += 1
            updated[at] = True
        return updated

    @torch.no_grad()
    def rms(self, i: int, k: int, grad: torch.Tensor) -> torch.Tensor:
        """√v̂ of member k's rows of parameter i, were its next update to take `grad`: the bias-corrected
        second moment that update divides by (the scale `noise.relative` draws noise on)."""
        beta2 = BETAS[1]
        v = self.exp_avg_sq[i][k].mul(beta2).addcmul(grad, grad, value=1 - beta2)
        return v.div(1 - beta2 ** (self.steps[k] + 1)).sqrt()

    # ---- per member state (checkpoints, PBT copies, rollbacks)
    def member_state(self, k: int) -> dict[str, Any]:
        return {"step": self.steps[k], "exp_avg": [m[k].clone() for m in self.exp_avg],
                "exp_avg_sq": [v[k].clone() for v in self.exp_avg_sq]}

    @torch.no_grad()
    def load_member(self, k: int, state: dict[str, Any]) -> None:
        self.steps[k] = int(state["step"])
        for m, v, sm, sv in zip(self.exp_avg, self.exp_avg_sq, state["exp_avg"], state["exp_avg_sq"]):
            m[k].copy_(sm)
            v[k].copy_(sv)

    def state_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "exp_avg": [m.clone() for m in self.exp_avg],
                "exp_avg_sq": [v.clone() for v in self.exp_avg_sq]}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = [int(s) for s in state["steps"]]
        for m, v, sm, sv in zip(self.exp_avg, self.exp_avg_sq, state["exp_avg"], state["exp_avg_sq"]):
            m.copy_(sm)
            v.copy_(sv)
