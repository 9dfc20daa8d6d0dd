"""A process whose data loader has two workers, for tests/test_kills.py (`python -m loader_workers <what>` from tests/):
`busy <file>`: the workers are stuck in a long read (their pids written to <file>) until the process is killed;
`quick`: prints the sum of the items, then exits with the loader still held, as a run's loaders are."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from torch.utils.data import Dataset

from seg.engine.runtime import make_loader
from seg.engine.stopping import stop_signals_interrupt

KEPT = []  # loaders held until the interpreter exits


class Items(Dataset):
    """`n` items (seg's loaders ask for (index, seed)); `busy`: each read takes 300 s."""

    def __init__(self, busy: bool = False, n: int = 4) -> None:
        self.busy, self.n = busy, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, item: tuple[int, int]) -> int:
        if self.busy:
            time.sleep(300)  # a worker in the middle of a long read
        return item[0]


def main(what: str, *args: str) -> None:
    stop_signals_interrupt()
    loader = make_loader(Items(busy=what == "busy"), 2, 2, False, False)
    KEPT.append(loader)
    if what == "busy":
        batches = iter(loader)
        done = Path(args[0])
        done.with_suffix(".tmp").write_text(" ".join(str(w.pid) for w in loader._iterator._workers))
        done.with_suffix(".tmp").replace(done)  # whole, or not there
        next(batches)
    else:
        print(sum(int(b.sum()) for b in loader), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
