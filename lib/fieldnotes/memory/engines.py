"""The engines the chapter measures and the paper's model of what each holds (bytes per parameter)."""

from __future__ import annotations

from dataclasses import dataclass

from fieldnotes.memory.zero import shard

PARTS = ("parameters", "gradients", "master", "moments")


@dataclass(frozen=True)
class EngineModel:
    """An engine's ZeRO stage and the bytes per parameter of each model-state part."""

    stage: int
    weight_bytes: int
    gradient_bytes: int
    master_bytes: int
    moment_bytes: int

    def formula_bytes(self, params: int, world_size: int) -> dict[str, int]:
        """Bytes per rank of each part, by the ZeRO paper's sharding (ceil(params / world_size))."""
        s = shard(params, world_size)
        return {
            "parameters": self.weight_bytes * (s if self.stage >= 3 else params),
            "gradients": self.gradient_bytes * (s if self.stage >= 2 else params),
            "master": self.master_bytes * (s if self.stage >= 1 else params),
            "moments": self.moment_bytes * (s if self.stage >= 1 else params),
        }

    @property
    def k(self) -> int:
        """The paper's K: optimizer-state bytes per parameter (master copy + moments)."""
        return self.master_bytes + self.moment_bytes


# DeepSpeed: bf16 mixed precision, fp32 master + Adam (K = 12); PyTorch's engines: fp32 (K = 8)
ENGINE_MODEL = {
    "deepspeed-0": EngineModel(0, 2, 2, 4, 8),
    "deepspeed-1": EngineModel(1, 2, 2, 4, 8),
    "deepspeed-2": EngineModel(2, 2, 2, 4, 8),
    "deepspeed-3": EngineModel(3, 2, 2, 4, 8),
    "torch-zero1": EngineModel(1, 4, 4, 0, 8),
    "torch-fsdp": EngineModel(3, 4, 4, 0, 8),
}
ENGINES = tuple(ENGINE_MODEL)

__all__ = ["ENGINES", "ENGINE_MODEL", "PARTS", "EngineModel"]
