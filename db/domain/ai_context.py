"""ai_context_logs, ai_prompts, ai_suggestions, embeddings (seed 002): ai_interaction and
embedding_computed; the exact cosine search over embeddings."""

from __future__ import annotations

import asyncpg

_R = """jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, event_id uuid, ts timestamptz, user_id text,
    conversation_id text, model text, prompt text, response text, prompt_tokens integer,
    completion_tokens integer, latency_ms integer, prompt_template jsonb, suggestions jsonb, context jsonb)"""

AI_INTERACTION = (
    # prompt templates: one row per (name, version); uses counts the interactions that used it
    f"""
WITH t AS (
    SELECT r.workspace_id, r.prompt_template ->> 'name' AS name, coalesce(r.prompt_template ->> 'version', '1') AS version,
        (array_agg(r.prompt_template ->> 'template' ORDER BY r.ts DESC))[1] AS template,
        (array_agg(r.prompt_template -> 'variables' ORDER BY r.ts DESC))[1] AS variables,
        min(r.ts) AS first_ts, max(r.ts) AS last_ts, count(*) AS uses
    FROM {_R}
    WHERE r.prompt_template IS NOT NULL
    GROUP BY r.workspace_id, 2, 3
)
INSERT INTO ai_prompts AS p (workspace_id, name, version, template, variables, first_used_at, last_used_at, uses)
SELECT workspace_id, name, version, template,
    coalesce(ARRAY(SELECT jsonb_array_elements_text(variables)), '{{}}'), first_ts, last_ts, uses
FROM t
ON CONFLICT (workspace_id, name, version) DO UPDATE SET
    first_used_at = least(p.first_used_at, excluded.first_used_at),
    last_used_at = greatest(p.last_used_at, excluded.last_used_at),
    uses = p.uses + excluded.uses
""",
    f"""
INSERT INTO ai_context_logs (workspace_id, id, conversation_id, user_id, model, prompt_id, prompt, response,
    prompt_tokens, completion_tokens, latency_ms, context, created_at)
SELECT r.workspace_id, r.event_id, r.conversation_id, r.user_id, r.model, p.id, r.prompt, r.response,
    r.prompt_tokens, r.completion_tokens, r.latency_ms, r.context, r.ts
FROM {_R}
LEFT JOIN ai_prompts p ON p.workspace_id = r.workspace_id AND p.name = r.prompt_template ->> 'name'
                      AND p.version = coalesce(r.prompt_template ->> 'version', '1')
ON CONFLICT (workspace_id, id) DO NOTHING
""",
    f"""
INSERT INTO ai_suggestions (workspace_id, id, interaction_id, suggestion_type, content, target_entity_type,
    target_entity_id, created_at)
SELECT r.workspace_id, s.suggestion_id, r.event_id, s.suggestion_type, s.content, s.target_entity_type,
    s.target_entity_id, r.ts
FROM {_R},
     jsonb_to_recordset(coalesce(r.suggestions, '[]')) AS s(suggestion_id uuid, suggestion_type text, content text,
        target_entity_type text, target_entity_id text)
ON CONFLICT (workspace_id, id) DO NOTHING
""",
)

# a later vector for the same (entity, model, version) replaces the stored one
EMBEDDING = ("""
INSERT INTO embeddings AS e (workspace_id, entity_type, entity_id, model, version, dimension, vector, created_at)
SELECT DISTINCT ON (r.workspace_id, r.entity_type, r.entity_id, r.model, r.version)
    r.workspace_id, r.entity_type, r.entity_id, r.model, r.version, cardinality(r.vector), r.vector, r.ts
FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, ts timestamptz, entity_type text, entity_id text,
    model text, version integer, vector real[])
ORDER BY r.workspace_id, r.entity_type, r.entity_id, r.model, r.version, r.ts DESC
ON CONFLICT (workspace_id, entity_type, entity_id, model, version) DO UPDATE SET
    dimension = excluded.dimension, vector = excluded.vector, created_at = excluded.created_at
WHERE excluded.created_at > e.created_at
""",)

_NEAREST = """
SELECT entity_type, entity_id, version, cosine_similarity(vector, $3::real[]) AS similarity
FROM embeddings
WHERE workspace_id = $1 AND model = $2 AND dimension = cardinality($3::real[])
ORDER BY similarity DESC NULLS LAST, entity_type, entity_id
LIMIT $4
"""


async def nearest(conn: asyncpg.Connection, workspace_id, model: str, vector: list[float], k: int = 10) -> list:
    """The k stored embeddings of `model` most similar to `vector` (exact cosine, a full scan of the
    workspace's vectors of that model and dimension)."""
    return await conn.fetch(_NEAREST, workspace_id, model, vector, k)
