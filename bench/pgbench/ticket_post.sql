-- POST /tickets: the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
-- define p2=bench
-- define p3=2026-12-01 16:15:29.121358+00
-- define p4=The dashboard shows an error after login. Could you have a look, please?
\set p1 3
WITH ticket AS (
            INSERT INTO tickets (author_id, topic, status, created_at, updated_at)
            VALUES (:p1, :p2, 'pending', :p3, :p3)
            RETURNING id
        ), message AS (
            INSERT INTO messages (ticket_id, author_id, type, text, created_at)
            SELECT id, CAST(:p1 AS BIGINT), 'request',
                   CAST(:p4 AS TEXT), CAST(:p3 AS TIMESTAMPTZ)
            FROM ticket
        ), author AS (
            UPDATE users SET tickets_count = tickets_count + 1 WHERE id = :p1
        )
        SELECT id FROM ticket;
