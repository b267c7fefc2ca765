"""Batch norm over the global batch of a data-parallel job (norm=syncbatch)."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class CrossRankBatchNorm2d(nn.BatchNorm2d):
    """Batch norm whose statistics cover the whole global batch, on any device (gloo or NCCL).

    Same parameters and buffers as nn.BatchNorm2d, so checkpoints do not change. The statistics
    travel through a differentiable all-reduce, so each rank's gradient includes the other ranks'
    losses, as the single-process batch norm over the global batch would.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        xf = x.float()
        c = xf.shape[1]
        count = torch.tensor([xf.numel() / c], dtype=torch.float32, device=x.device)
        stats = torch.cat([xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3)), count])
        stats = all_reduce(stats)  # (2C + 1,) summed over ranks, gradient flows back
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 0.1
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                unbiased = var.detach() * (n / (n - 1).clamp_min(1))
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
                self.num_batches_tracked.add_(1)
        y = (xf - mean[None, :, None, None]) * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)
