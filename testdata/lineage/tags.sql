-- A Snowflake object tag: Veil cannot remove it (only this script can).
CREATE TAG SENSITIVITY;
ALTER TABLE CRM.CORE.CONTACTS MODIFY COLUMN PHONE SET TAG SENSITIVITY = 'high';
