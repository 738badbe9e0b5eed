-- A fresh install's types (the catalogue of a release records none, so
-- 10_tables.sql cannot: tests/test_install.py compares them with the
-- revisions' through pg_dump). Changed only by a numbered migration, like a
-- table.

-- Brought by revision 0011.
CREATE TYPE vk._neighbour AS (
    pk text, chunk integer, start_char integer, end_char integer, body text, distance double precision
);
COMMENT ON TYPE vk._neighbour IS 'Internal: one result of vk._nearest (a row, or a chunk of one, and its distance).';
