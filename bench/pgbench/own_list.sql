-- GET /tickets: the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
-- define tickets_created_at=-infinity
-- define job_cursors_name=events
\set tickets_author_id 3
\set tickets_id 0
\set limit 101
SELECT tickets.id, tickets.created_at, tickets.updated_at, tickets.topic, tickets.status, tickets.rating_score, tickets.rating_comment, tickets.rated_at 
FROM tickets 
WHERE tickets.author_id = :tickets_author_id::BIGINT AND (tickets.created_at, tickets.id) > (:tickets_created_at::TIMESTAMP WITH TIME ZONE, :tickets_id::BIGINT) ORDER BY tickets.created_at, tickets.id 
 LIMIT :limit::INTEGER;
BEGIN;
SELECT job_cursors.position 
FROM job_cursors 
WHERE job_cursors.name = :job_cursors_name::VARCHAR FOR UPDATE SKIP LOCKED;
SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ticket_events_id_seq;
SELECT min((classid::bigint << 32) | objid::bigint) FROM pg_locks
        WHERE locktype = 'advisory' AND objsubid = 1
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database());
