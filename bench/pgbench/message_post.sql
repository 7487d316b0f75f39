-- POST /tickets/{id}/messages: the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
-- define p3={"Any news on this? We are still waiting for an answer from the team."}
-- define p4={"2026-12-07 16:55:50.907994+00"}
-- define job_cursors_name=events
\set p1 980000
\set p2 3
WITH ticket AS (
                SELECT id, status FROM tickets WHERE id = :p1 AND author_id = :p2 FOR UPDATE
            ), posted AS (
                SELECT * FROM unnest(CAST(:p3 AS TEXT[]), CAST(:p4 AS TIMESTAMPTZ[]))
                    WITH ORDINALITY AS p(text, now, n)
            ), message AS (
                INSERT INTO messages (ticket_id, author_id, type, text, created_at)
                SELECT ticket.id, CAST(:p2 AS BIGINT), 'request',
                       posted.text, posted.now
                FROM ticket, posted WHERE ticket.status NOT IN ('canceled')
                ORDER BY posted.n
                RETURNING id, created_at, type, text, attachment_count, author_id
            ), touched AS (
                UPDATE tickets SET status = CASE WHEN status IN ('resolved', 'unresolved') THEN 'pending' ELSE status END, updated_at = (SELECT max(now) FROM posted), search_public = CASE WHEN length(search_public) < 50000 THEN search_public || to_tsvector('english', (SELECT string_agg(left(posted.text, 100000), ' ' ORDER BY posted.n) FROM posted)) ELSE search_public END
                WHERE id = (SELECT id FROM ticket) AND EXISTS (SELECT FROM message)
            ), event AS (
                INSERT INTO ticket_events (ticket_id, at, actor_id, kind, before, after)
                SELECT ticket.id, message.created_at, CAST(:p2 AS BIGINT),
                       e.kind, e.before, e.after
                FROM ticket, message, (SELECT pg_advisory_xact_lock_shared(last_value) FROM ticket_events_id_seq) AS guard,
                     LATERAL (SELECT 'message', NULL, json_build_object('message_id', message.id, 'type', message.type)::text, 0 WHERE true UNION ALL SELECT 'status', json_build_object('status', ticket.status)::text, json_build_object('status', CASE WHEN ticket.status IN ('resolved', 'unresolved') THEN 'pending' ELSE ticket.status END)::text, 1 WHERE ticket.status IN ('resolved', 'unresolved') AND message.id = (SELECT min(id) FROM message)) AS e(kind, before, after, n)
                ORDER BY message.id, e.n
            )
            SELECT ticket.status, message.id, message.created_at, message.type, message.text,
                   message.attachment_count, message.author_id
            FROM ticket LEFT JOIN message ON true
            ORDER BY message.id;
BEGIN;
SELECT job_cursors.position 
FROM job_cursors 
WHERE job_cursors.name = :job_cursors_name::VARCHAR FOR UPDATE SKIP LOCKED;
SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ticket_events_id_seq;
SELECT min((classid::bigint << 32) | objid::bigint) FROM pg_locks
        WHERE locktype = 'advisory' AND objsubid = 1
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database());
