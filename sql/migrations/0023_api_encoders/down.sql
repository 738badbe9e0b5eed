-- Undoes 10_tables.sql of revision 0023_api_encoders.
DROP TABLE IF EXISTS vk.api_usage;
