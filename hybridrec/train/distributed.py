"""Data-parallel training through ``accelerate`` (DDP: gloo on CPU, NCCL on GPU).

A run started by a launcher that sets ``WORLD_SIZE > 1`` (``accelerate launch``,
``torchrun``) is distributed: every process loads the data, samples the same neighbourhoods
and trains the same model; each global batch is split into one contiguous share per process
and DDP averages the gradients, so the update is the one a single process would make on the
whole batch. The main process alone evaluates and writes the run folder.

On a machine with GPUs ``accelerate launch --num_processes 2 -m hybridrec.run ...`` starts
one process per GPU. On CPU, accelerate's plain launcher starts a single process, so ask for
its torchrun launcher with ``--multi_gpu`` (hybridrec then runs the processes on the CPU with
gloo, because the run's device is ``cpu``)::

    accelerate launch --multi_gpu --num_processes 2 -m hybridrec.run --model pinsage ...

Only models whose class sets the capability flag ``distributed`` (they share each batch
between processes) accept a distributed run: PinSage and the BPR models (MF, LightGCN, NGCF,
the hybrid). Evaluation is sharded too: each process ranks its share of the users and the
per-user metrics are summed across processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

def world_size() -> int:
    """Processes of this run according to the launcher's environment (1 when not launched)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def is_distributed() -> bool:
    return world_size() > 1


@dataclass
class DistContext:
    """The process's place in a distributed run: ``rank`` of ``world_size``, and the
    ``accelerate.Accelerator`` that prepares the module and optimiser."""

    rank: int
    world_size: int
    accelerator: Any

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> slice:
        """This process's contiguous share of ``n`` batch rows (sizes differ by at most one;
        a share may be empty when ``n < world_size``)."""
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()

    def close(self) -> None:
        """Leave the process group (end of the run), once every process has reached the end:
        a process that tore its group down while another still talked to it could abort."""
        import torch

        if torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()

    def broadcast(self, obj):
        """``obj`` of the main process, on every process (any picklable value made by this
        run's own code, e.g. the run folder's path)."""
        import torch

        box = [obj if self.is_main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]


_CONTEXT: DistContext | None = None


def context(device="cpu") -> DistContext | None:
    """The distributed context of this process, or None in a single-process run.

    The first call (with the run's ``device``) starts the process group through
    ``accelerate``: gloo when the device is the CPU, NCCL on CUDA.
    """
    global _CONTEXT
    if not is_distributed():
        return None
    if _CONTEXT is None:
        import torch

        try:
            from accelerate import Accelerator
        except ImportError as e:  # pragma: no cover - accelerate is a dependency
            raise RuntimeError("distributed training needs accelerate: pip install accelerate") from e
        acc = Accelerator(cpu=torch.device(device).type == "cpu")
        _CONTEXT = DistContext(acc.process_index, acc.num_processes, acc)
    return _CONTEXT


def check_distributed(model_names: list[str]) -> None:
    """Raise ``ValueError`` when a distributed run asks for a model that cannot share batches
    (a registered model whose class does not set ``distributed``, or a mode such as compare)."""
    if not is_distributed():
        return
    from ..models.registry import models_with

    able = models_with(distributed=True)
    bad = [m for m in model_names if m not in able]
    if bad:
        raise ValueError(f"a distributed run (WORLD_SIZE={world_size()}) trains only {', '.join(able)}; "
                         f"{', '.join(bad)} would train the same model in every process: run it without "
                         "accelerate launch")
