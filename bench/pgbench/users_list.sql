-- GET /users?limit=100 (staff): the statements the service sends for one request,
-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).
\set users_tickets_count -2147483648
\set users_id 0
\set limit 101
SELECT users.id, users.created_at, users.username, users.email, users.is_staff, users.tickets_count 
FROM users 
WHERE (-users.tickets_count, users.id) > (:users_tickets_count::INTEGER, :users_id::BIGINT) ORDER BY -users.tickets_count, users.id 
 LIMIT :limit::INTEGER;
