-- POST /tickets/{id}/messages: the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
-- define revoked_tokens_jti=IKvr3TZOxd2H_vxSiyNwfQ
-- define messages_type=request
-- define messages_text=Any news on this? We are still waiting for an answer from the team.
-- define messages_created_at=2026-11-26 20:00:19.737585+00
-- define p1=pending
-- define p2=2026-11-26 20:00:19.737585+00
\set users_id 3
\set users_token_version 0
\set tickets_id 980000
\set tickets_author_id 3
\set messages_ticket_id 980000
\set messages_author_id 3
SELECT users.id, users.email, users.username, users.is_staff, users.is_superuser 
FROM users 
WHERE users.id = :users_id::BIGINT AND users.is_active AND users.token_version = :users_token_version::INTEGER AND NOT (EXISTS (SELECT * 
FROM revoked_tokens 
WHERE revoked_tokens.jti = :revoked_tokens_jti::VARCHAR));
BEGIN;
SELECT tickets.author_id, tickets.status 
FROM tickets 
WHERE tickets.id = :tickets_id::BIGINT AND tickets.author_id = :tickets_author_id::BIGINT FOR UPDATE;
INSERT INTO messages (ticket_id, author_id, type, text, created_at) VALUES (:messages_ticket_id::BIGINT, :messages_author_id::BIGINT, :messages_type::VARCHAR, :messages_text::VARCHAR, :messages_created_at::TIMESTAMP WITH TIME ZONE) RETURNING messages.id, messages.created_at, messages.type, messages.text \gset new_messages_
UPDATE tickets SET status=:p1::VARCHAR, updated_at=:p2::TIMESTAMP WITH TIME ZONE WHERE tickets.id = :tickets_id::BIGINT;
COMMIT;
