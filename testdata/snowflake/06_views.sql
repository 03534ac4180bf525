-- A secure view over protected customers (SPEC rule 5): its base table is
-- read with the view owner's rights but through the querying role's
-- policies, then the view's own masking policy applies. The sales
-- executive role is granted the view, not the table.
CREATE OR REPLACE SECURE VIEW customer_directory AS
  SELECT id, name, email, region FROM customers;

CREATE OR REPLACE MASKING POLICY region_initial AS (val STRING) RETURNS STRING ->
  CASE WHEN CURRENT_ROLE() = 'ANALYST' THEN val ELSE LEFT(val, 1) || '*' END;

ALTER VIEW customer_directory MODIFY COLUMN region SET MASKING POLICY region_initial;

GRANT SELECT ON VIEW customer_directory TO ROLE analyst;
GRANT SELECT ON VIEW customer_directory TO ROLE sales_executive_role;
