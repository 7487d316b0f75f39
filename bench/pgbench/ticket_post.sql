-- POST /tickets: the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
-- define revoked_tokens_jti=IKvr3TZOxd2H_vxSiyNwfQ
-- define tickets_topic=bench
-- define tickets_status=pending
-- define tickets_created_at=2026-11-26 20:00:19.748972+00
-- define tickets_updated_at=2026-11-26 20:00:19.748972+00
-- define messages_type=request
-- define messages_text=The dashboard shows an error after login. Could you have a look, please?
-- define messages_created_at=2026-11-26 20:00:19.748972+00
\set users_id 3
\set users_token_version 0
\set tickets_author_id 3
\set messages_author_id 3
\set p1 1
SELECT users.id, users.email, users.username, users.is_staff, users.is_superuser 
FROM users 
WHERE users.id = :users_id::BIGINT AND users.is_active AND users.token_version = :users_token_version::INTEGER AND NOT (EXISTS (SELECT * 
FROM revoked_tokens 
WHERE revoked_tokens.jti = :revoked_tokens_jti::VARCHAR));
BEGIN;
INSERT INTO tickets (author_id, topic, status, created_at, updated_at) VALUES (:tickets_author_id::BIGINT, :tickets_topic::VARCHAR, :tickets_status::VARCHAR, :tickets_created_at::TIMESTAMP WITH TIME ZONE, :tickets_updated_at::TIMESTAMP WITH TIME ZONE) RETURNING tickets.id \gset new_tickets_
INSERT INTO messages (ticket_id, author_id, type, text, created_at) VALUES (:new_tickets_id::BIGINT, :messages_author_id::BIGINT, :messages_type::VARCHAR, :messages_text::VARCHAR, :messages_created_at::TIMESTAMP WITH TIME ZONE) RETURNING messages.id \gset new_messages_
UPDATE users SET tickets_count=(users.tickets_count + :p1::INTEGER) WHERE users.id = :users_id::BIGINT;
COMMIT;
