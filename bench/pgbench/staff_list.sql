-- GET /tickets?limit=100 (staff): the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
-- define revoked_tokens_jti=JZ0n342jr1eBHAaHrDKjsw
-- define tickets_created_at=-infinity
\set users_id 2
\set users_token_version 0
\set tickets_id 0
\set limit 101
SELECT users.id, users.email, users.username, users.is_staff, users.is_superuser 
FROM users 
WHERE users.id = :users_id::BIGINT AND users.is_active AND users.token_version = :users_token_version::INTEGER AND NOT (EXISTS (SELECT * 
FROM revoked_tokens 
WHERE revoked_tokens.jti = :revoked_tokens_jti::VARCHAR));
SELECT tickets.id, tickets.created_at, tickets.updated_at, tickets.topic, tickets.status, users.email AS author 
FROM tickets JOIN users ON users.id = tickets.author_id 
WHERE (tickets.created_at, tickets.id) > (:tickets_created_at::TIMESTAMP WITH TIME ZONE, :tickets_id::BIGINT) ORDER BY tickets.created_at, tickets.id 
 LIMIT :limit::INTEGER;
