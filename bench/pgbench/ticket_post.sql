-- POST /tickets: the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
-- define p1={bench}
-- define p2={"The dashboard shows an error after login. Could you have a look, please?"}
-- define p3={"2026-12-07 16:55:50.919358+00"}
-- define p4={"2026-12-08 00:55:50.919358+00"}
-- define p5={"2026-12-09 16:55:50.919358+00"}
\set p6 3
WITH opened AS MATERIALIZED (
            SELECT nextval('tickets_id_seq') AS id, p.*
            FROM unnest(CAST(:p1 AS TEXT[]), CAST(:p2 AS TEXT[]),
                        CAST(:p3 AS TIMESTAMPTZ[]), CAST(:p4 AS TIMESTAMPTZ[]),
                        CAST(:p5 AS TIMESTAMPTZ[]))
                WITH ORDINALITY AS p(topic, text, now, first_due, resolution_due, n)
            ORDER BY p.n
        ), ticket AS (
            INSERT INTO tickets (id, author_id, topic, status, priority, created_at, updated_at,
                                 first_response_due_at, resolution_due_at, search_public)
            SELECT id, :p6, topic, 'pending', 1,
                   now, now, first_due, resolution_due,
                   to_tsvector('english', topic)
                   || to_tsvector('english', left(text, 100000))
            FROM opened ORDER BY n
            RETURNING id, topic, created_at
        ), message AS (
            INSERT INTO messages (ticket_id, author_id, type, text, created_at)
            SELECT id, CAST(:p6 AS BIGINT), 'request', text, now
            FROM opened ORDER BY n
            RETURNING id, ticket_id
        ), author AS (
            UPDATE users SET tickets_count = tickets_count + (SELECT count(*) FROM opened)
            WHERE id = :p6
        ), event AS (
            INSERT INTO ticket_events (ticket_id, at, actor_id, kind, before, after)
            SELECT ticket.id, ticket.created_at, CAST(:p6 AS BIGINT),
                   e.kind, e.before, e.after
            FROM ticket JOIN message ON message.ticket_id = ticket.id, (SELECT pg_advisory_xact_lock_shared(last_value) FROM ticket_events_id_seq) AS guard,
                 LATERAL (VALUES ('created', NULL, json_build_object('topic', ticket.topic, 'status', 'pending', 'message_id', message.id)::text)) AS e(kind, before, after)
            ORDER BY ticket.id
        )
        SELECT id FROM opened ORDER BY n;
