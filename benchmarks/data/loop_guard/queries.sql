CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    total_cents INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'new',
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

INSERT INTO users (name, email) VALUES ('Ada', 'ada@example.org');
INSERT INTO users (name, email) VALUES ('Grace', 'grace@example.org');
INSERT INTO users (name, email) VALUES ('Edsger', 'edsger@example.org');
INSERT INTO users (name, email) VALUES ('Barbara', 'barbara@example.org');
INSERT INTO users (name, email) VALUES ('Donald', 'donald@example.org');
INSERT INTO users (name, email) VALUES ('Frances', 'frances@example.org');

INSERT INTO orders (user_id, total_cents, status) VALUES (1, 1200, 'paid');
INSERT INTO orders (user_id, total_cents, status) VALUES (1, 800, 'paid');
INSERT INTO orders (user_id, total_cents, status) VALUES (2, 4500, 'new');
INSERT INTO orders (user_id, total_cents, status) VALUES (3, 300, 'cancelled');
INSERT INTO orders (user_id, total_cents, status) VALUES (4, 9900, 'paid');
INSERT INTO orders (user_id, total_cents, status) VALUES (5, 100, 'paid');

SELECT u.name, COUNT(o.id) AS orders, SUM(o.total_cents) / 100.0 AS total
FROM users u LEFT JOIN orders o ON o.user_id = u.id AND o.status = 'paid'
GROUP BY u.id
ORDER BY total DESC;

SELECT status, COUNT(*) FROM orders GROUP BY status;
SELECT strftime('%Y-%m', created_at) AS month, SUM(total_cents) FROM orders GROUP BY month;
