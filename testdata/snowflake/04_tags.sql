-- Tag-based masking: one tag, a string and a number policy; each applies
-- only to the tagged columns of its type (docs, "Tag-based masking policies").
CREATE TAG pii ALLOWED_VALUES 'phone', 'year';

CREATE OR REPLACE MASKING POLICY pii_string AS (val STRING) RETURNS STRING ->
  CASE
    WHEN IS_ROLE_IN_SESSION('PII_READER') THEN val
    ELSE '<' || SYSTEM$GET_TAG_ON_CURRENT_COLUMN('pii') || ' hidden>'
  END;

CREATE OR REPLACE MASKING POLICY pii_number AS (val NUMBER) RETURNS NUMBER ->
  CASE WHEN IS_ROLE_IN_SESSION('PII_READER') THEN val ELSE 0 END;

ALTER TAG pii SET MASKING POLICY pii_string, MASKING POLICY pii_number;

ALTER TABLE customers MODIFY COLUMN phone SET TAG pii = 'phone';
ALTER TABLE customers MODIFY COLUMN birth_year SET TAG pii = 'year';
