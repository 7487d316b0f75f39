-- GET /tickets/{id}: the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
-- define revoked_tokens_jti=KZ6dt2TIxs-OSA2DvrBgmQ
\set users_id 3
\set users_token_version 0
\set tickets_author_id 3
\set tickets_id 20000
SELECT users.id, users.email, users.username, users.is_staff, users.is_superuser 
FROM users 
WHERE users.id = :users_id::BIGINT AND users.is_active AND users.token_version = :users_token_version::INTEGER AND NOT (EXISTS (SELECT * 
FROM revoked_tokens 
WHERE revoked_tokens.jti = :revoked_tokens_jti::VARCHAR));
SELECT tickets.id, tickets.created_at, tickets.updated_at, tickets.topic, tickets.status 
FROM tickets 
WHERE tickets.author_id = :tickets_author_id::BIGINT AND tickets.id = :tickets_id::BIGINT;
