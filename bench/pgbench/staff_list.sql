-- GET /tickets?limit=100 (staff): the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
-- define p1=9999-12-31 00:00:00+00
-- define tickets_created_at=-infinity
\set tickets_id 0
\set limit 101
SELECT tickets.id, tickets.created_at, tickets.updated_at, tickets.topic, tickets.status, tickets.rating_score, tickets.rating_comment, tickets.rated_at, users.email AS author, tickets.assignee_id, tickets.priority, tickets.first_response_due_at, tickets.resolution_due_at, tickets.first_response_at, tickets.resolved_at, CASE WHEN (tickets.status IN ('canceled', 'resolved')) THEN :p1::TIMESTAMP WITH TIME ZONE WHEN (tickets.first_response_at IS NULL) THEN coalesce(tickets.first_response_due_at, :p1::TIMESTAMP WITH TIME ZONE) ELSE coalesce(tickets.resolution_due_at, :p1::TIMESTAMP WITH TIME ZONE) END AS due_at, users.username AS author_name 
FROM tickets JOIN users ON users.id = tickets.author_id 
WHERE (tickets.created_at, tickets.id) > (:tickets_created_at::TIMESTAMP WITH TIME ZONE, :tickets_id::BIGINT) ORDER BY tickets.created_at, tickets.id 
 LIMIT :limit::INTEGER;
