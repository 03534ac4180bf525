-- Roles, their hierarchy and grants, as a Snowflake account would have them.
CREATE ROLE analyst;
CREATE ROLE support;
CREATE ROLE pii_reader;
CREATE ROLE sales_executive_role;
CREATE ROLE sales_manager_eu;
CREATE ROLE sales_manager_us;

-- Analysts read PII through PII_READER (IS_ROLE_IN_SESSION sees inherited roles).
GRANT ROLE pii_reader TO ROLE analyst;

GRANT SELECT ON TABLE customers TO ROLE analyst;
GRANT SELECT ON TABLE customers TO ROLE support;
GRANT SELECT ON TABLE sales TO ROLE sales_executive_role;
GRANT SELECT ON TABLE sales TO ROLE sales_manager_eu;
GRANT SELECT ON TABLE sales TO ROLE sales_manager_us;

GRANT ROLE analyst TO USER anna;
GRANT ROLE support TO USER sam;
GRANT ROLE sales_executive_role TO USER mary;
GRANT ROLE sales_manager_eu TO USER joe;
GRANT ROLE sales_manager_us TO USER uma;

-- A role reads a table only with USAGE on its database and schema, as every
-- Snowflake governance script grants (Veil records these; `veil lint` warns
-- on a read without them). Warehouses do not matter to Veil.
GRANT USAGE ON DATABASE sales_db TO ROLE analyst;
GRANT USAGE ON SCHEMA sales_db.public TO ROLE analyst;
GRANT USAGE ON DATABASE sales_db TO ROLE support;
GRANT USAGE ON SCHEMA sales_db.public TO ROLE support;
GRANT USAGE ON DATABASE sales_db TO ROLE sales_executive_role;
GRANT USAGE ON SCHEMA sales_db.public TO ROLE sales_executive_role;
GRANT USAGE ON DATABASE sales_db TO ROLE sales_manager_eu;
GRANT USAGE ON SCHEMA sales_db.public TO ROLE sales_manager_eu;
GRANT USAGE ON DATABASE sales_db TO ROLE sales_manager_us;
GRANT USAGE ON SCHEMA sales_db.public TO ROLE sales_manager_us;
GRANT USAGE ON WAREHOUSE compute_wh TO ROLE analyst;
