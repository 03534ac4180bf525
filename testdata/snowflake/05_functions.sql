-- A memoizable function that looks up the current role's regions once per
-- statement (docs, "Memoizable functions" with row access policies).
CREATE OR REPLACE MEMOIZABLE FUNCTION allowed_regions()
  RETURNS ARRAY
  AS 'SELECT ARRAY_AGG(region) FROM governance.region_access WHERE role_name = CURRENT_ROLE()';

CREATE OR REPLACE ROW ACCESS POLICY customers_by_region AS (customer_region VARCHAR) RETURNS BOOLEAN ->
  ARRAY_CONTAINS(customer_region, allowed_regions());

ALTER TABLE customers ADD ROW ACCESS POLICY customers_by_region ON (region);
