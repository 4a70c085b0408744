"""ai_context_logs, ai_prompts, ai_suggestions, embeddings (seed 002): ai_interaction and
embedding_computed; the exact cosine search over embeddings."""

from __future__ import annotations

import asyncpg

_R = """jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, event_id uuid, ts timestamptz, user_id text,
    conversation_id text, model text, prompt text, response text, prompt_tokens integer,
    completion_tokens integer, latency_ms integer, prompt_template jsonb, suggestions jsonb, context jsonb)"""

# prompt templates: one row per (workspace, name, version), its id derived from those (the same in
# every database that routes the same events); first/last_used_at span the interactions that used
# it, template and variables are the latest interaction's (by event time; at the same instant the
# greater template text, then variables); `uses` counts the interactions inserted into
# ai_context_logs, so an interaction routed again counts no more
_PROMPTS = f"""
WITH r AS (
    SELECT r.workspace_id, r.ts, r.prompt_template ->> 'name' AS name,
        coalesce(r.prompt_template ->> 'version', '1') AS version, r.prompt_template ->> 'template' AS template,
        coalesce(ARRAY(SELECT jsonb_array_elements_text(r.prompt_template -> 'variables')), '{{}}') AS variables
    FROM {_R}
    WHERE r.prompt_template IS NOT NULL
), t AS (
    SELECT DISTINCT ON (workspace_id, name, version) workspace_id, name, version, template, variables,
        min(ts) OVER (PARTITION BY workspace_id, name, version) AS first_ts, ts AS last_ts
    FROM r
    ORDER BY workspace_id, name, version, ts DESC, template DESC, variables DESC
)
INSERT INTO ai_prompts AS p (workspace_id, id, name, version, template, variables, first_used_at, last_used_at)
SELECT workspace_id, md5(jsonb_build_array(workspace_id, name, version)::text)::uuid, name, version, template,
    variables, first_ts, last_ts
FROM t
ON CONFLICT (workspace_id, name, version) DO UPDATE SET
    template = CASE WHEN (excluded.last_used_at, excluded.template, excluded.variables)
                         > (p.last_used_at, p.template, p.variables) THEN excluded.template ELSE p.template END,
    variables = CASE WHEN (excluded.last_used_at, excluded.template, excluded.variables)
                          > (p.last_used_at, p.template, p.variables) THEN excluded.variables ELSE p.variables END,
    first_used_at = least(p.first_used_at, excluded.first_used_at),
    last_used_at = greatest(p.last_used_at, excluded.last_used_at)
WHERE excluded.first_used_at < p.first_used_at
   OR (excluded.last_used_at, excluded.template, excluded.variables) > (p.last_used_at, p.template, p.variables)
"""

AI_INTERACTION = (
    _PROMPTS,
    f"""
WITH ins AS (
    INSERT INTO ai_context_logs (workspace_id, id, conversation_id, user_id, model, prompt_id, prompt, response,
        prompt_tokens, completion_tokens, latency_ms, context, created_at)
    SELECT r.workspace_id, r.event_id, r.conversation_id, r.user_id, r.model, p.id, r.prompt, r.response,
        r.prompt_tokens, r.completion_tokens, r.latency_ms, r.context, r.ts
    FROM {_R}
    LEFT JOIN ai_prompts p ON p.workspace_id = r.workspace_id AND p.name = r.prompt_template ->> 'name'
                          AND p.version = coalesce(r.prompt_template ->> 'version', '1')
    ON CONFLICT (workspace_id, id) DO NOTHING
    RETURNING workspace_id, prompt_id
), n AS (
    SELECT workspace_id, prompt_id, count(*) AS uses FROM ins WHERE prompt_id IS NOT NULL GROUP BY workspace_id, prompt_id
)
UPDATE ai_prompts p SET uses = p.uses + n.uses
FROM n WHERE p.workspace_id = n.workspace_id AND p.id = n.prompt_id
""",
    # a suggestion is the one of the earliest interaction that carries its id (in event time; at
    # the same instant the lower interaction id within a batch, the one routed first across
    # batches); its status and feedback (user_feedback) stay
    f"""
INSERT INTO ai_suggestions AS g (workspace_id, id, interaction_id, suggestion_type, content, target_entity_type,
    target_entity_id, created_at)
SELECT DISTINCT ON (r.workspace_id, s.suggestion_id)
    r.workspace_id, s.suggestion_id, r.event_id, s.suggestion_type, s.content, s.target_entity_type,
    s.target_entity_id, r.ts
FROM {_R},
     jsonb_to_recordset(coalesce(r.suggestions, '[]')) AS s(suggestion_id uuid, suggestion_type text, content text,
        target_entity_type text, target_entity_id text)
ORDER BY r.workspace_id, s.suggestion_id, r.ts, r.event_id
ON CONFLICT (workspace_id, id) DO UPDATE SET
    interaction_id = excluded.interaction_id, suggestion_type = excluded.suggestion_type, content = excluded.content,
    target_entity_type = excluded.target_entity_type, target_entity_id = excluded.target_entity_id,
    created_at = excluded.created_at
WHERE excluded.created_at < g.created_at
""",
)

# a later vector for the same (entity, model, version) replaces the stored one (at the same instant,
# the greater vector: any order of arrival gives the same row)
EMBEDDING = ("""
INSERT INTO embeddings AS e (workspace_id, entity_type, entity_id, model, version, dimension, vector, created_at)
SELECT DISTINCT ON (r.workspace_id, r.entity_type, r.entity_id, r.model, r.version)
    r.workspace_id, r.entity_type, r.entity_id, r.model, r.version, cardinality(r.vector), r.vector, r.ts
FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, ts timestamptz, entity_type text, entity_id text,
    model text, version integer, vector real[])
ORDER BY r.workspace_id, r.entity_type, r.entity_id, r.model, r.version, r.ts DESC, r.vector DESC
ON CONFLICT (workspace_id, entity_type, entity_id, model, version) DO UPDATE SET
    dimension = excluded.dimension, vector = excluded.vector, created_at = excluded.created_at
WHERE (excluded.created_at, excluded.vector) > (e.created_at, e.vector)
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
