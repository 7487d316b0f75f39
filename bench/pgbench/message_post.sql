-- POST /tickets/{id}/messages: the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
-- define p3=Any news on this? We are still waiting for an answer from the team.
-- define p4=2026-12-01 16:15:29.113887+00
\set p1 980000
\set p2 3
WITH ticket AS (
                SELECT id, status FROM tickets WHERE id = :p1 AND author_id = :p2 FOR UPDATE
            ), message AS (
                INSERT INTO messages (ticket_id, author_id, type, text, created_at)
                SELECT id, CAST(:p2 AS BIGINT), 'request',
                       CAST(:p3 AS TEXT), CAST(:p4 AS TIMESTAMPTZ)
                FROM ticket WHERE status NOT IN ('canceled')
                RETURNING id, created_at, type, text
            ), touched AS (
                UPDATE tickets SET status = CASE WHEN status IN ('resolved', 'unresolved') THEN 'pending' ELSE status END, updated_at = CAST(:p4 AS TIMESTAMPTZ)
                WHERE id = (SELECT id FROM ticket) AND EXISTS (SELECT FROM message)
            )
            SELECT ticket.status, message.id, message.created_at, message.type, message.text
            FROM ticket LEFT JOIN message ON true;
