-- GET /tickets/{id}/messages: the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
\set messages_id 0
\set tickets_id 80000
\set tickets_author_id 3
\set limit 101
SELECT messages.id, messages.created_at, messages.type, messages.text 
FROM tickets LEFT OUTER JOIN messages ON messages.ticket_id = tickets.id AND messages.id > :messages_id::BIGINT 
WHERE tickets.id = :tickets_id::BIGINT AND tickets.author_id = :tickets_author_id::BIGINT ORDER BY messages.id 
 LIMIT :limit::INTEGER;
