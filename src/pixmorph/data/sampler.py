"""An endless, seeded sample order that is a pure function of the position: resumable exactly."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class StepSampler(Sampler[int]):
    """Yields sample keys `epoch * n + i` in a per-epoch shuffled order, from any start position.

    The dataset turns a key into (index = key % n, augmentation seed = key), so where training
    stops and resumes never changes which images or crops it sees. With `world_size` > 1 each rank
    takes every world_size-th key of the same global order.
    """

    def __init__(
        self,
        n: int,
        seed: int = 0,
        start: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if n <= 0:
            raise ValueError("cannot sample from an empty dataset")
        self.n, self.seed, self.start, self.shuffle = n, seed, start, shuffle
        self.rank, self.world_size = rank, world_size

    def order(self, epoch: int) -> np.ndarray:
        """The sample order of one epoch."""
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def __iter__(self) -> Iterator[int]:
        pos = self.start * self.world_size + self.rank  # global position of this rank's next key
        epoch, offset = divmod(pos, self.n)
        perm = self.order(epoch)
        while True:
            yield epoch * self.n + int(perm[offset])
            offset += self.world_size
            while offset >= self.n:
                offset -= self.n
                epoch += 1
                perm = self.order(epoch)

    def __len__(self) -> int:  # endless; DataLoader only needs it for progress estimates
        return 2**62
