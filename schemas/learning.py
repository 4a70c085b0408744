"""The `event_data` contract of each learning event type (pydantic v2). No I/O.

A learning event's `event_type` chooses the contract its `event_data` must meet to be routed into
its domain table (db/domain/). The contract does not gate the raw log: an event with a valid
envelope is stored in learning_events as sent, and one whose event_data misses its type's contract
is recorded as unrouted (`check_event_data`). Contracts are tolerant of fields they do not know
(routing ignores them; the raw log keeps them) and strict on the types of those they do;
`context` is there for free-form detail, `error` marks an event that reports a failure (the window
stage's error rate counts it).

Compatibility (docs/ingest.md, "Changing a contract"; each exported schema's `$comment`): a
contract may gain optional fields; anything else (a field removed, renamed, made required, retyped
or narrowed) needs a new event type name, or a `version` field in event_data that the new contract
requires (a new name where `version` already means the described thing's own version).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from schemas.types import JsonObject, Name50, Name100, Name255, NestedTime, Uuid, integer, safe_dumps

Text = Annotated[str, StringConstraints(max_length=32_768)]
ShortText = Annotated[str, StringConstraints(max_length=2_000)]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Count = integer(ge=0, le=2_147_483_647)
BigCount = integer(ge=0, le=9_223_372_036_854_775_807)
Rating = integer(ge=1, le=5)
Positive = integer(ge=1, le=1_000_000)


#: unknown fields are ignored (left out of the routed record, kept in the raw log) and the JSON
#: Schemas say so; the known ones are strict: the JSON type their schema names, nothing coerced
TOLERANT = ConfigDict(extra="ignore", frozen=True, strict=True, json_schema_extra={"additionalProperties": True})


class _Data(BaseModel):
    model_config = TOLERANT

    error: bool | ShortText | None = Field(None, description="set when the event reports a failure")
    context: JsonObject | None = Field(None, description="free-form detail (JSON object)")


def _one_of_present(*fields: tuple[str, str], exactly: bool = False) -> ConfigDict:
    """A model_validator's "one of these fields, not null" rule in the exported schema too: anyOf
    (exactly: oneOf) of `required` with the field's non-null JSON type."""
    branches = [{"required": [name], "properties": {name: {"type": json_type}}} for name, json_type in fields]
    return ConfigDict(json_schema_extra={**TOLERANT["json_schema_extra"], "oneOf" if exactly else "anyOf": branches})


class ModelPrediction(_Data):
    """-> predictions (and the view viral_score_predictions when the target is a content item)."""

    model_config = _one_of_present(("predicted_score", "number"), ("predicted_value", "object"))

    prediction_id: Uuid
    model_id: Uuid = Field(description="a model registered by a model_registered event")
    prediction_type: Name100 = Field(description="e.g. viral_score, engagement_rate")
    target_entity_type: Name100 | None = Field(None, description="'content' for a content item")
    target_entity_id: Name255 | None = None
    predicted_score: Finite | None = Field(None, description="the numeric prediction (accuracy is measured on it)")
    predicted_value: JsonObject | None = Field(None, description="a categorical or complex prediction")
    confidence: Probability | None = None
    confidence_interval: JsonObject | None = None
    horizon_hours: Count | None = Field(None, description="when the outcome is due, hours after the prediction")
    features: JsonObject | None = Field(None, description="the input features / prediction factors")

    @model_validator(mode="after")
    def _some_value(self) -> ModelPrediction:
        if self.predicted_score is None and self.predicted_value is None:
            raise ValueError("a prediction needs predicted_score or predicted_value")
        return self


class PredictionOutcome(_Data):
    """The observed outcome of a prediction -> predictions.actual_*, prediction_accuracy."""

    model_config = _one_of_present(("actual_score", "number"), ("actual_outcome", "object"))

    prediction_id: Uuid
    actual_score: Finite | None = None
    actual_outcome: JsonObject | None = None
    actual_metrics: JsonObject | None = Field(None, description="e.g. the engagement counts it was measured on")

    @model_validator(mode="after")
    def _some_value(self) -> PredictionOutcome:
        if self.actual_score is None and self.actual_outcome is None:
            raise ValueError("an outcome needs actual_score or actual_outcome")
        return self


class UserFeedback(_Data):
    """A user's judgement of a prediction (-> predictions.feedback_received, and with actual_score
    prediction_accuracy) or of an AI suggestion (-> ai_suggestions.status)."""

    model_config = _one_of_present(("prediction_id", "string"), ("suggestion_id", "string"), exactly=True)

    prediction_id: Uuid | None = None
    suggestion_id: Uuid | None = None
    rating: Rating | None = None
    correct: bool | None = None
    accepted: bool | None = Field(None, description="for a suggestion: accepted or rejected")
    actual_score: Finite | None = None
    comment: ShortText | None = None

    @model_validator(mode="after")
    def _one_target(self) -> UserFeedback:
        if (self.prediction_id is None) == (self.suggestion_id is None):
            raise ValueError("feedback names exactly one of prediction_id and suggestion_id")
        return self


class PatternDetection(_Data):
    """-> identified_patterns (one row per workspace, pattern_type and signature) + pattern_occurrences."""

    pattern_type: Name100
    pattern_name: Name255
    signature: JsonObject = Field(description="what identifies the pattern; equal signatures are one pattern")
    description: ShortText | None = None
    detection_algorithm: Name100 | None = None
    confidence: Probability | None = None
    severity: Literal["low", "medium", "high", "critical"] | None = None
    impact_metrics: JsonObject | None = None
    remediation_suggestions: JsonObject | None = None
    source_type: Name100 = "content"
    source_id: Name255
    content_id: Uuid | None = None
    location_data: JsonObject | None = None
    success: bool | None = Field(None, description="did the content it was seen on succeed")
    engagement: Finite | None = None
    model_id: Uuid | None = None


class ModelRegistered(_Data):
    """-> ml_models (a later event for the same model_id updates status and metrics)."""

    model_id: Uuid
    name: Name255
    version: Name50
    model_type: Name100 = Field(description="e.g. prediction, pattern_recognition, optimization")
    framework: Name50 | None = None
    status: Literal["training", "active", "deprecated", "archived"] = "training"
    model_data: JsonObject | None = None
    hyperparameters: JsonObject | None = None
    training_config: JsonObject | None = None
    performance_metrics: JsonObject | None = None
    parent_model_id: Uuid | None = None
    created_by: Name255 | None = None


class DatasetRegistered(_Data):
    """-> training_datasets."""

    dataset_id: Uuid
    name: Name255
    version: Name50
    dataset_type: Name100
    source_type: Name100 | None = None
    data_schema: JsonObject | None = None
    storage_location: ShortText | None = None
    size_bytes: BigCount | None = None
    record_count: BigCount | None = None
    quality_score: Probability | None = None
    preprocessing_config: JsonObject | None = None


class TrainingProgress(_Data):
    """-> model_training_sessions (epochs and losses merged by epoch; status by event time)."""

    session_id: Uuid
    model_id: Uuid
    dataset_id: Uuid | None = None
    status: Literal["running", "completed", "failed", "cancelled"] = "running"
    epoch: Count | None = None
    total_epochs: Count | None = None
    loss: Finite | None = None
    val_loss: Finite | None = None
    progress_percentage: Percent | None = None
    validation_metrics: JsonObject | None = None
    resource_usage: JsonObject | None = None
    error_log: Text | None = None


class ABExperiment(_Data):
    """-> ab_testing_experiments."""

    experiment_id: Uuid
    name: Name255
    description: ShortText | None = None
    hypothesis: ShortText | None = None
    feature_flag: Name255 | None = None
    control_variant: JsonObject | None = None
    treatment_variants: Annotated[list[JsonObject], Field(max_length=32)] | None = None
    target_metrics: Annotated[list[Name100], Field(max_length=32)] | None = None
    traffic_allocation: Annotated[dict[Name100, Percent], Field(max_length=33)] | None = None
    start_date: NestedTime | None = None
    end_date: NestedTime | None = None
    status: Literal["draft", "running", "completed", "cancelled"] = "draft"
    statistical_power: Probability = 0.8
    significance_level: Probability = 0.05
    minimum_sample_size: Count | None = None
    winner_variant: Name100 | None = None
    created_by: Name255 | None = None


class ABAssignment(_Data):
    """-> ab_testing_assignments (one per experiment and subject: the earliest in event time stands)."""

    experiment_id: Uuid
    subject_id: Name255 = Field(description="the user, account or post assigned")
    variant: Name100
    session_id: Name255 | None = None
    user_agent: ShortText | None = None
    metadata: JsonObject | None = None


class ABOutcome(_Data):
    """-> the subject's assignment (converted, value) and the experiment's results per variant."""

    experiment_id: Uuid
    subject_id: Name255
    converted: bool | None = None
    value: Finite | None = None
    metrics: JsonObject | None = None


class EvolutionExperiment(_Data):
    """-> evolution_experiments."""

    experiment_id: Uuid
    name: Name255
    description: ShortText | None = None
    problem_definition: JsonObject
    objective_function: JsonObject
    population_size: Positive = 50
    max_generations: Positive = 100
    status: Literal["initialized", "running", "completed", "failed"] = "initialized"
    convergence_threshold: Finite | None = None
    mutation_rate: Probability = 0.1
    crossover_rate: Probability = 0.8
    selection_strategy: Name100 = "tournament"
    llm_config: JsonObject | None = None
    evaluation_config: JsonObject | None = None
    created_by: Name255 | None = None


class EvolutionGeneration(_Data):
    """-> evolution_generations, and the experiment's current generation."""

    experiment_id: Uuid
    generation_id: Uuid
    generation_number: Count
    population_data: Annotated[list[JsonObject], Field(max_length=1000)] | None = None
    generation_stats: JsonObject | None = None
    diversity_metrics: JsonObject | None = None
    selection_pressure: Finite | None = None
    convergence_metrics: JsonObject | None = None
    completed: bool = Field(False, description="the generation is done: its end is this event's time")


class EvolutionIndividual(_Data):
    """-> evolution_individuals, the generation's best individual and the experiment's best score."""

    experiment_id: Uuid
    generation_number: Count
    individual_id: Uuid
    individual_index: Count
    genotype: JsonObject
    phenotype: Text | None = None
    fitness_score: Finite | None = None
    evaluation_metrics: JsonObject | None = None
    parent_ids: Annotated[list[Uuid], Field(max_length=16)] = Field(default_factory=list)
    mutation_applied: JsonObject | None = None
    crossover_applied: JsonObject | None = None
    evaluation_time_ms: Count | None = None
    evaluation_status: Literal["pending", "evaluating", "completed", "failed"] | None = None
    error_log: Text | None = None


class StyleAnalysis(_Data):
    """-> content_style_analysis."""

    content_id: Uuid
    visual_style: JsonObject | None = None
    audio_style: JsonObject | None = None
    text_style: JsonObject | None = None
    style_tags: Annotated[list[Name100], Field(max_length=64)] = Field(default_factory=list)
    engagement_correlation: Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)] | None = None
    model_id: Uuid | None = None


class TrendDetected(_Data):
    """-> trend_analysis (a row per episode of a workspace, platform, trend type and key: a report
    joins the key's reported episodes its [start, end] overlaps or touches, else starts one; no end:
    still going; start the earliest, end the latest, impact the latest event's that carried one)."""

    platform: Name50
    trend_type: Name50 = Field(description="hashtag, audio, style, topic, format, ...")
    trend_key: Name255 = Field(description="the hashtag, the audio id, ...")
    trend_data: JsonObject | None = None
    engagement_impact: Finite | None = Field(None, description="% engagement over the baseline")
    start_time: NestedTime | None = Field(None, description="default: the event's timestamp")
    end_time: NestedTime | None = None


class ImprovementMeasured(_Data):
    """-> ai_improvement_tracking. improvement_percentage is positive = better, always: when not
    given, it is computed from `metric` in before/after as (after - before) / |before| x 100,
    turned for a lower-is-better metric (by the words of its name: loss, error, latency, time,
    duration, cost, ...; a recall, accuracy, ... is higher-is-better), so latency 200 -> 100 ms is
    +50, as the model_improvements job writes it."""

    improvement_type: Name50
    metric: Name100 | None = None
    before_metrics: JsonObject | None = None
    after_metrics: JsonObject | None = None
    improvement_percentage: Finite | None = Field(
        None, description="% change, positive = better (a latency cut from 200 to 100 ms is +50); "
                          "default: computed from `metric` in before/after")
    model_id: Uuid | None = None


class SystemOptimization(ImprovementMeasured):
    """-> ai_improvement_tracking, like improvement_measured."""

    improvement_type: Name50 = "system_optimization"


class PromptTemplate(BaseModel):
    model_config = TOLERANT

    name: Name255
    version: Name50 = "1"
    template: Text
    variables: Annotated[list[Name100], Field(max_length=64)] = Field(default_factory=list)


class Suggestion(BaseModel):
    model_config = TOLERANT

    suggestion_id: Uuid
    suggestion_type: Name100
    content: Text
    target_entity_type: Name100 | None = None
    target_entity_id: Name255 | None = None


class AIInteraction(_Data):
    """-> ai_context_logs, its prompt template (ai_prompts) and its suggestions (ai_suggestions)."""

    conversation_id: Name255 | None = None
    model: Name100
    prompt: Text
    response: Text | None = None
    prompt_tokens: Count | None = None
    completion_tokens: Count | None = None
    latency_ms: Count | None = None
    prompt_template: PromptTemplate | None = None
    suggestions: Annotated[list[Suggestion], Field(max_length=32)] = Field(default_factory=list)


class EmbeddingComputed(_Data):
    """-> embeddings (a real[] vector; cosine search by SQL: cosine_similarity)."""

    entity_type: Name100
    entity_id: Name255
    model: Name100
    version: Positive = 1
    vector: Annotated[list[Finite], Field(min_length=1, max_length=4096)]


#: event_type -> the contract of its event_data
DATA_CONTRACTS: dict[str, type[_Data]] = {
    "model_prediction": ModelPrediction,
    "prediction_outcome": PredictionOutcome,
    "user_feedback": UserFeedback,
    "pattern_detection": PatternDetection,
    "model_registered": ModelRegistered,
    "dataset_registered": DatasetRegistered,
    "training_progress": TrainingProgress,
    "ab_experiment": ABExperiment,
    "ab_assignment": ABAssignment,
    "ab_outcome": ABOutcome,
    "evolution_experiment": EvolutionExperiment,
    "evolution_generation": EvolutionGeneration,
    "evolution_individual": EvolutionIndividual,
    "style_analysis": StyleAnalysis,
    "trend_detected": TrendDetected,
    "improvement_measured": ImprovementMeasured,
    "system_optimization": SystemOptimization,
    "ai_interaction": AIInteraction,
    "embedding_computed": EmbeddingComputed,
}


def data_dump(model: BaseModel) -> dict[str, Any]:
    """The routed form of validated event_data: JSON types, unset optional fields left out."""
    return model.model_dump(mode="json", exclude_none=True)


#: most errors kept of an event_data that misses its contract, and the longest one
MAX_ERRORS, MAX_ERROR_CHARS = 10, 500


@dataclass(frozen=True, slots=True)
class DataVerdict:
    """event_data judged by its type's contract: `record` is what routing reads (the contract's
    fields, defaults filled in, unknown fields left out), or `errors` say why it cannot be routed."""

    record: dict[str, Any] | None
    errors: tuple[str, ...] = ()


def check_event_data(event_type: str, data: dict[str, Any]) -> DataVerdict | None:
    """The verdict of `event_type`'s contract on `data` (validated as JSON, as a producer's message
    is); None for a type without a contract."""
    contract = DATA_CONTRACTS.get(event_type)
    if contract is None:
        return None
    raw = safe_dumps(data)
    if raw is None:  # pragma: no cover - the envelope refused what cannot be written
        return DataVerdict(None, ("(event_data): cannot be written as JSON",))
    try:
        return DataVerdict(data_dump(contract.model_validate_json(raw)))
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        return DataVerdict(None, tuple(
            f"{'.'.join(str(p) for p in e['loc']) or '(event_data)'}: {e['msg']}"[:MAX_ERROR_CHARS]
            for e in errors[:MAX_ERRORS]
        ))
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:  # a validator's own failure on odd input
        return DataVerdict(None, (f"(event_data): {exc.__class__.__name__}: {exc}"[:MAX_ERROR_CHARS],))
