"""learnstream event contracts: pydantic models, the message decoder and JSON Schema export (no I/O)."""

from schemas.decode import Decoded, Rejected, decode_message, decoder_for
from schemas.events import (
    CONTRACTS,
    MAX_EVENTS_PER_MESSAGE,
    DeadLetter,
    DeadLetterError,
    EngagementUpdate,
    LearningEvent,
    PerformanceSample,
)

__all__ = [
    "CONTRACTS",
    "MAX_EVENTS_PER_MESSAGE",
    "DeadLetter",
    "DeadLetterError",
    "Decoded",
    "EngagementUpdate",
    "LearningEvent",
    "PerformanceSample",
    "Rejected",
    "decode_message",
    "decoder_for",
]
