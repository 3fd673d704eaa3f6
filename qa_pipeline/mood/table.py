"""``OUT/mood/turns.parquet``: the customer's frustration, turn by turn (:data:`MOOD_TURNS_SCHEMA`).

One row per customer turn of every scored call, in time order; a run replaces the rows of the calls
it writes and keeps the others, like the transcripts table. The call's peak and end are in
``scores/calls`` (frustration_peak, frustration_end, deescalated).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from qa_pipeline.output.tables import atomic_write_table, build_table
from qa_pipeline.records import CallMood

MOOD_TURNS_FILE = Path("mood") / "turns.parquet"

MOOD_TURNS_SCHEMA = pa.schema([
    pa.field("call_id", pa.string(), nullable=False),
    pa.field("utterance_id", pa.string(), nullable=False),  # the customer's turn in transcripts.parquet
    pa.field("start", pa.float64(), nullable=False),
    pa.field("end", pa.float64(), nullable=False),
    pa.field("frustration", pa.float64(), nullable=False),  # 0–1
    pa.field("complaint", pa.float64(), nullable=False),  # the complaint classifier's probability
    pa.field("example_margin", pa.float64(), nullable=False),  # closer to frustrated than to calm examples (cosine margin)
    pa.field("pitch_st", pa.float64()),  # semitones above the caller's first turns; null: not measured
    pa.field("level_db", pa.float64()),  # dB above them
    pa.field("rate", pa.float64()),  # log2 of the speaking rate over theirs
    pa.field("overlap", pa.bool_(), nullable=False),  # talked over the agent
    pa.field("model", pa.string(), nullable=False),  # the mood model's id
])


def moods_to_table(moods: Iterable[CallMood]) -> pa.Table:
    rows = [{"call_id": m.call_id, "utterance_id": t.utterance_id, "start": t.start, "end": t.end,
             "frustration": t.frustration, "complaint": t.complaint, "example_margin": t.similar, "pitch_st": t.pitch_st,
             "level_db": t.level_db, "rate": t.rate, "overlap": t.overlap, "model": m.model}
            for m in moods for t in m.turns]
    return build_table(rows, MOOD_TURNS_SCHEMA)


def write_moods(out: Path, moods: Mapping[str, CallMood], replaces: Iterable[str]) -> None:
    """Add `moods` to the table, replacing every row of the calls in `replaces` (and of `moods`)."""
    path = Path(out) / MOOD_TURNS_FILE
    table = moods_to_table(moods.values())
    gone = pa.array(sorted({*replaces, *moods}), pa.string())
    if path.is_file():
        try:
            old = pq.read_table(path, schema=MOOD_TURNS_SCHEMA)
        except (OSError, pa.ArrowException):
            old = None  # unreadable (another version): rebuilt from this run's calls
        if old is not None:
            table = pa.concat_tables([old.filter(pc.invert(pc.is_in(old["call_id"], value_set=gone))), table])
    atomic_write_table(table, path)
