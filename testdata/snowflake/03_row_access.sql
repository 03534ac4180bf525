-- Row access through a mapping table (docs, "Understanding row access
-- policies"): the sales executive sees every sale, each manager the regions
-- SALESMANAGERREGIONS maps to their role. Managers have no grant on the
-- mapping table: the policy reads it with its owner's rights.
CREATE OR REPLACE ROW ACCESS POLICY sales_policy AS (sales_region VARCHAR) RETURNS BOOLEAN ->
  'SALES_EXECUTIVE_ROLE' = CURRENT_ROLE()
  OR EXISTS (
    SELECT 1 FROM governance.salesmanagerregions
    WHERE sales_manager = CURRENT_ROLE()
      AND region = sales_region
  );

ALTER TABLE sales ADD ROW ACCESS POLICY sales_policy ON (region);
