-- GET /tickets/{id}/messages: the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
\set messages_id 0
\set tickets_id 80000
\set tickets_author_id 3
\set limit 101
\set sized_size 4194304
SELECT sized.id, sized.created_at, sized.type, sized.text, sized.attachment_count, sized.author_id, sized.fetched 
FROM (SELECT page.id AS id, page.created_at AS created_at, page.type AS type, page.text AS text, page.attachment_count AS attachment_count, page.author_id AS author_id, page.size AS size, sum(page.size) OVER (ORDER BY page.id) AS upto, count(*) OVER () AS fetched 
FROM (SELECT messages.id AS id, messages.created_at AS created_at, messages.type AS type, messages.text AS text, messages.attachment_count AS attachment_count, messages.author_id AS author_id, octet_length(messages.text) AS size 
FROM tickets LEFT OUTER JOIN messages ON messages.ticket_id = tickets.id AND messages.id > :messages_id::BIGINT AND messages.type != 'note' 
WHERE tickets.id = :tickets_id::BIGINT AND tickets.author_id = :tickets_author_id::BIGINT ORDER BY messages.id 
 LIMIT :limit::INTEGER) AS page) AS sized 
WHERE sized.size IS NULL OR sized.upto - sized.size < :sized_size::INTEGER ORDER BY sized.id;
