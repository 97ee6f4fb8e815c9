"""The typed result of `lsdt predict`: one layout's step time, throughput and memory per GPU.

engine.sizing.refine.predict (the engineering model, Step 2) answers with the PREDICT_KEYS dict that
the search ranks by the thousand; `Prediction.of(that)` reads it once, and its readers (the CLI's
text, the Monitor's predicted-vs-measured) use attributes. `to_dict()` gives the dict back key for
key: the `lsdt predict --json` object (tests pin it against refine's).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.sizing.efficiency import Efficiency
from engine.sizing.refine import Layout, layout_from


@dataclass(frozen=True)
class Chosen:
    """The resolved layout (what "auto" picked) and the batch it runs."""

    layout: Layout
    gpus: int
    global_batch: int  # sequences per step, as asked
    global_batch_used: int  # as run: below global_batch when --flexible-batch rounded it to a multiple of dp
    microbatches: int  # per replica per step
    seq_len: int

    @classmethod
    def of(cls, chosen: dict) -> Chosen:
        return cls(layout_from(chosen), chosen["gpus"], chosen["global_batch"], chosen["global_batch_used"],
                   chosen["microbatches"], chosen["seq_len"])

    def to_dict(self) -> dict:
        return {**self.layout.to_dict(), "gpus": self.gpus, "global_batch": self.global_batch,
                "global_batch_used": self.global_batch_used, "microbatches": self.microbatches, "seq_len": self.seq_len}


@dataclass(frozen=True)
class StepBreakdown:
    """Where a step's time and a GPU's memory go. Seconds per step unless named otherwise;
    step_time_s = compute_s + bubble_s + exposed_comm_s + optimizer_s."""

    compute_s: float
    recompute_s: float
    bubble_s: float
    tp_comm_s: float
    ep_comm_s: float
    cp_comm_exposed_s: float
    pp_comm_s: float
    dp_comm_s: float
    dp_comm_exposed_s: float
    host_offload_exposed_s: float
    exposed_comm_s: float
    optimizer_s: float
    bubble_fraction: float
    memory_bytes: dict[str, float]  # per GPU, by part: weights, gradients, optimizer, zero3_gather, activations, logits
    efficiency: Efficiency
    attention: str
    dropout: bool
    precision: str

    @classmethod
    def of(cls, breakdown: dict) -> StepBreakdown:
        return cls(**{**breakdown, "efficiency": Efficiency(**breakdown["efficiency"])})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Prediction:
    """One layout's step: its time, throughput and memory per GPU, what "auto" chose and where the time goes."""

    step_time_s: float
    tokens_per_s_per_gpu: float
    model_tflops_per_gpu: float  # no recompute counted
    hardware_tflops_per_gpu: float  # recompute counted
    mfu: float
    memory_per_gpu_bytes: float
    fits: bool
    chosen: Chosen
    breakdown: StepBreakdown

    @classmethod
    def of(cls, r: dict) -> Prediction:
        """The record of refine.predict's (or EngineeringModel.evaluate's) dict."""
        return cls(**{**r, "chosen": Chosen.of(r["chosen"]), "breakdown": StepBreakdown.of(r["breakdown"])})

    def to_dict(self) -> dict:
        scalars = {k: v for k, v in asdict(self).items() if k not in ("chosen", "breakdown")}
        return {**scalars, "chosen": self.chosen.to_dict(), "breakdown": self.breakdown.to_dict()}
