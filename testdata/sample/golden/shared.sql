-- Shared query parts of the per-user golden files. Every <user>.slt runs
-- these queries, in this order, as its user;
-- `cargo test -p veil-tests --test golden -- --complete` regenerates the
-- expected results. Queries are separated by blank lines.

-- every customer column: hash, regex, show_last (deeper tag beats hash),
-- show_first / nullify (for_everyone_who ... otherwise), round, constant
SELECT id, name, email, ssn, phone, region, balance, notes FROM customers ORDER BY id

-- orders: decimal rounding, date truncation, time window, minimization, purpose
SELECT order_id, customer_id, amount, order_date, status, region FROM orders ORDER BY order_id

-- employees: custom where with @isInGroups / @attributeValuesContains,
-- masking exception by attribute, hash on a NUMBER falls back to NULL
SELECT emp_id, name, department, salary, manager_id, hire_date FROM analytics.hr.employees ORDER BY emp_id

-- aggregates run on masked values
SELECT region, count(*) AS n, sum(balance) AS total FROM customers GROUP BY region ORDER BY region

-- a predicate on a masked column compares the masked value
SELECT count(*) AS n FROM customers WHERE ssn = '111-11-1111'

-- joins see both tables' policies
SELECT c.region, count(*) AS n, sum(o.amount) AS total FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.region ORDER BY c.region

-- a user reads their own profile row and no other
SELECT user_name, groups, attributes FROM veil.system.user_profile

-- session context comes from the host
SELECT current_user() AS u, current_role() AS r, is_role_in_session('public') AS p, is_role_in_session('hr_analyst') AS hr

-- a table that does not exist: same error as one not granted
SELECT * FROM no_such_table

-- what the session may see
SHOW TABLES

-- column types and masking policies
DESCRIBE TABLE customers
