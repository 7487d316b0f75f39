-- GET /users?limit=100 (staff): the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
-- define revoked_tokens_jti=JZ0n342jr1eBHAaHrDKjsw
\set users_id 2
\set users_token_version 0
\set users_tickets_count -2147483648
\set users_id_2 0
\set limit 101
SELECT users.id, users.email, users.username, users.is_staff, users.is_superuser 
FROM users 
WHERE users.id = :users_id::BIGINT AND users.is_active AND users.token_version = :users_token_version::INTEGER AND NOT (EXISTS (SELECT * 
FROM revoked_tokens 
WHERE revoked_tokens.jti = :revoked_tokens_jti::VARCHAR));
SELECT users.id, users.created_at, users.username, users.email, users.is_staff, users.tickets_count 
FROM users 
WHERE (-users.tickets_count, users.id) > (:users_tickets_count::INTEGER, :users_id_2::BIGINT) ORDER BY -users.tickets_count, users.id 
 LIMIT :limit::INTEGER;
