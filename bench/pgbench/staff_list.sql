-- GET /tickets?limit=100 (staff): the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
-- define tickets_created_at=-infinity
\set tickets_id 0
\set limit 101
SELECT tickets.id, tickets.created_at, tickets.updated_at, tickets.topic, tickets.status, users.email AS author 
FROM tickets JOIN users ON users.id = tickets.author_id 
WHERE (tickets.created_at, tickets.id) > (:tickets_created_at::TIMESTAMP WITH TIME ZONE, :tickets_id::BIGINT) ORDER BY tickets.created_at, tickets.id 
 LIMIT :limit::INTEGER;
