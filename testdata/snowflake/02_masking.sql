-- Email mask by role (Snowflake docs, "Understanding Column-level Security").
CREATE OR REPLACE MASKING POLICY email_mask AS (val STRING) RETURNS STRING ->
  CASE
    WHEN CURRENT_ROLE() IN ('ANALYST') THEN val
    ELSE '*********'
  END;

ALTER TABLE customers MODIFY COLUMN email SET MASKING POLICY email_mask;

-- Conditional masking: the name shows only where the row's VISIBILITY column
-- says Public (docs: "Using conditional columns").
CREATE OR REPLACE MASKING POLICY name_visibility AS (name VARCHAR, visibility STRING) RETURNS VARCHAR ->
  CASE
    WHEN CURRENT_ROLE() = 'ANALYST' THEN name
    WHEN visibility = 'Public' THEN name
    ELSE '***MASKED***'
  END;

ALTER TABLE customers MODIFY COLUMN name SET MASKING POLICY name_visibility USING (name, visibility);
