"""The typed result of `lsdt bands` (engine.sizing.bands.plan_bands): one frozen record per part.

The CLI's text, the Bands tab and the Train tab's "from bands" read these by attribute; `to_dict()`
is the `lsdt bands --json` object, key for key and in the same order (tests pin it). The pilot's
projection is engine.sizing.pilot's own record (PilotProjection), carried here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.sizing.pilot import PilotProjection


def _plain(value: Any) -> Any:
    """asdict's output with tuples as lists: the JSON shape, comparable with == to a parsed JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class _Record:
    def to_dict(self) -> dict:
        return _plain(asdict(self))  # type: ignore[call-overload]  # every subclass is a dataclass


@dataclass(frozen=True)
class SeqFit(_Record):
    """One depth at one sequence length: its batch, memory and throughput there."""

    seq_len: int
    flops_per_token: float
    activation_bytes_per_seq: float
    max_device_batch: int  # the largest batch that fits (0: none)
    device_batch: int  # the power of two a run uses (divides the global batch)
    grad_accum: int
    memory_bytes: float | None  # at device_batch; None when nothing fits
    tokens_per_s: float
    tokens_per_s_source: str  # "probe" | "estimate"
    measured_peak_vram_bytes: float | None
    tokens_in_window: float

    @property
    def fits(self) -> bool:
        return self.max_device_batch >= 1


@dataclass(frozen=True)
class MemoryBreakdown(_Record):
    """A depth's step memory at its device batch, by part (the 16 B/param state split as the runtime holds it)."""

    weights_bytes: float
    grads_bytes: float
    adam_bytes: float
    autocast_copies_bytes: float
    activations_bytes: float

    @property
    def total_bytes(self) -> float:
        return (self.weights_bytes + self.grads_bytes + self.adam_bytes + self.autocast_copies_bytes
                + self.activations_bytes)


@dataclass(frozen=True)
class DepthRow(_Record):
    """One depth of the table, at the main sequence length (`by_seq`: at every length the curriculum uses)."""

    depth: int
    d_model: int
    n_head: int
    n_kv_head: int
    head_dim: int
    params: int
    matmul_params: int
    flops_per_token: float
    seq_len: int
    state_bytes: float
    fixed_bytes: float
    activation_bytes_per_seq: float
    max_device_batch: int
    device_batch: int
    grad_accum: int
    memory_bytes: float | None
    memory_breakdown: MemoryBreakdown
    fits: bool
    tokens_per_s: float
    tokens_per_s_source: str
    step_time_s: float
    tokens_in_window: float
    pretrain_tokens: float
    tokens_per_param: float
    chinchilla_tokens: float
    band: str  # "A" | "B" | "C" (bands.band_of)
    by_seq: tuple[SeqFit, ...]
    verdict: str = ""  # set once every row exists: it compares with the next deeper one

    def at_seq(self, seq_len: int) -> SeqFit:
        return next(x for x in self.by_seq if x.seq_len == seq_len)

    def batch_text(self) -> str:
        """The device batch a run uses (the power of two the curriculum and the memory column use) and
        the largest that fits, said together: the table showed the largest while the curriculum ran
        the power of two, with no word on why they differ."""
        b, top = self.device_batch, self.max_device_batch
        fits = f" (fits up to {top}: a power of two divides the global batch)" if top != b else ""
        return f"device batch {b} x {self.grad_accum} accum at seq {self.seq_len}{fits}"


@dataclass(frozen=True)
class Choice(_Record):
    """The recommended depth, or its fallback, and why."""

    depth: int
    band: str
    tokens_per_param: float
    reason: str


@dataclass(frozen=True)
class Split(_Record):
    """The window split into pretraining and SFT + eval; the token figures are the recommended depth's
    (None when no depth fits)."""

    pretrain_fraction: float
    sft_fraction: float
    pretrain_s: float
    sft_s: float
    pretrain_flop: float
    sft_flop: float
    depth: int | None = None
    pretrain_tokens: float | None = None
    sft_tokens: int | None = None


@dataclass(frozen=True)
class CurriculumStage(_Record):
    """One sequence-length stage of the recommended depth's pretraining (curriculum.plan_curriculum)."""

    seq_len: int
    time_fraction: float
    time_s: float
    tokens_per_s: float
    tokens: int
    flop: float
    device_batch: int
    grad_accum: int
    fits: bool


@dataclass(frozen=True)
class Curriculum(_Record):
    stages: tuple[CurriculumStage, ...]
    time_s: float
    tokens: int
    flop: float
    depth: int


@dataclass(frozen=True)
class MeasuredRow(_Record):
    """Seed M0's table: one probe result with its gradient-accumulation steps and window capacity."""

    depth: int
    seq_len: int
    device_batch: int | None
    grad_accum: int | None
    tok_per_s: float | None
    step_time_s: float | None
    peak_vram_bytes: float | None
    mfu: float | None
    status: str  # "ok" | "oom" | "error"
    tokens_in_window: float | None


@dataclass(frozen=True)
class BandShape(_Record):
    """What every depth shares (shapes.band_spec's inputs)."""

    head_dim: int
    n_kv_head: int | None
    window_pattern: str
    vocab_size: int
    ffn: str
    tie_embeddings: bool


@dataclass(frozen=True)
class BandsPlan(_Record):
    """The `lsdt bands` answer: the per-depth table, the window's envelope and split, the recommended
    depth with its curriculum, a probe's measured map and a pilot's projection."""

    hardware: str
    peak_flops: float
    memory_bytes: float
    usable_memory_bytes: float
    hours: float
    window_s: float
    mfu: float
    sustained_flops: float
    global_batch_tokens: int
    shape: BandShape
    rows: tuple[DepthRow, ...]
    envelope_flop: float
    split: Split
    curriculum: Curriculum | None
    recommended: Choice | None
    fallback: Choice | None
    measured: tuple[MeasuredRow, ...] | None
    probe_device: str | None
    pilot: PilotProjection | None  # the pilot's projection (or its refusal)

    def row(self, depth: int) -> DepthRow | None:
        return next((r for r in self.rows if r.depth == depth), None)

    @property
    def measured_rows(self) -> int:
        """How many depths' tok/s a probe measured (the others are estimates)."""
        return sum(r.tokens_per_s_source == "probe" for r in self.rows)

    def no_fallback_reason(self) -> str:
        """Why there is no fallback below the recommended depth, in the user's words."""
        rec = self.recommended
        if not rec:
            return "none: no depth fits"
        if rec.depth == min(r.depth for r in self.rows):
            return f"none: d{rec.depth} is the shallowest depth asked for (add shallower ones to depths)"
        return "none: no shallower depth fits"

    def curriculum_note(self, fmt_count: Callable[[float], str] = lambda n: f"{n:.3g}") -> str:
        """Why the curriculum's pretraining tokens differ from the table's for the same depth: the
        table assumes the main sequence length throughout, the curriculum runs shorter, faster stages
        first. Empty when they agree within 1 %. `fmt_count` formats a token count (engine.fmt.count:
        the CLI and the tab pass it; sizing imports nothing above specs)."""
        c = self.curriculum
        if not c:
            return ""
        row = self.row(c.depth)
        if abs(c.tokens - row.pretrain_tokens) <= 0.01 * row.pretrain_tokens:
            return ""
        return (f"the table's {fmt_count(row.pretrain_tokens)} assumes seq {row.seq_len} throughout; "
                "the shorter stages run faster")
