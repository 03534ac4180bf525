-- A Snowflake masking policy written as a deny-list: every role but
-- INTERN, including roles created later, sees raw order regions.
CREATE MASKING POLICY region_unless_intern AS (val STRING) RETURNS STRING ->
  CASE WHEN CURRENT_ROLE() != 'INTERN' THEN val ELSE '***' END;
ALTER TABLE orders MODIFY COLUMN region SET MASKING POLICY region_unless_intern;
