-- GET /tickets: the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
-- define tickets_created_at=-infinity
\set tickets_author_id 3
\set tickets_id 0
\set limit 101
SELECT tickets.id, tickets.created_at, tickets.updated_at, tickets.topic, tickets.status 
FROM tickets 
WHERE tickets.author_id = :tickets_author_id::BIGINT AND (tickets.created_at, tickets.id) > (:tickets_created_at::TIMESTAMP WITH TIME ZONE, :tickets_id::BIGINT) ORDER BY tickets.created_at, tickets.id 
 LIMIT :limit::INTEGER;
