-- GET /tickets?limit=100&cursor=90% (staff): the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
-- define tickets_created_at=2026-10-26 04:14:40.763193+00
\set tickets_id 900000
\set limit 101
SELECT tickets.id, tickets.created_at, tickets.updated_at, tickets.topic, tickets.status, users.email AS author 
FROM tickets JOIN users ON users.id = tickets.author_id 
WHERE (tickets.created_at, tickets.id) > (:tickets_created_at::TIMESTAMP WITH TIME ZONE, :tickets_id::BIGINT) ORDER BY tickets.created_at, tickets.id 
 LIMIT :limit::INTEGER;
