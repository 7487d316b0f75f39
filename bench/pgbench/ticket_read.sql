-- GET /tickets/{id}: the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
\set tickets_author_id 3
\set tickets_id 20000
SELECT tickets.id, tickets.created_at, tickets.updated_at, tickets.topic, tickets.status, tickets.rating_score, tickets.rating_comment, tickets.rated_at 
FROM tickets 
WHERE tickets.author_id = :tickets_author_id::BIGINT AND tickets.id = :tickets_id::BIGINT;
