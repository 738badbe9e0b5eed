-- vectorkeep 0010: stored SQL runs with its author's rights. Run once by
-- revision 0010_security, before the current definitions; undone by down.sql.

-- Each collection's text and order expressions become functions of their own
-- here, owned by the role that registered them and running with its rights
-- (SECURITY DEFINER of that role), never the schema owner's.
CREATE SCHEMA vk_expr;
COMMENT ON SCHEMA vk_expr IS
    'vectorkeep: each collection''s text (text_c<id>) and order (order_c<id>) expressions, as functions owned by the role that registered them.';

ALTER TABLE vk.collections
    ADD COLUMN registered_by name,
    ADD COLUMN order_registered_by name,
    ADD COLUMN copies_row_security boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN vk.collections.registered_by IS
    'The role that attached the table: the text expression runs with its rights (vk_expr.text_c<id>).';
COMMENT ON COLUMN vk.collections.order_registered_by IS
    'The role that set the order expressions: they run with its rights (vk_expr.order_c<id>).';
COMMENT ON COLUMN vk.collections.copies_row_security IS
    'The table has row-level security and its operator chose to copy its text anyway (vk.attach(..., row_security => ''copy'')): vk''s copies follow table privileges, not row policies.';

-- Collections attached before this revision: their expressions were run as
-- the schema owner; from now on they run as the table's owner.
UPDATE vk.collections c SET registered_by = pg_get_userbyid(cl.relowner),
                            copies_row_security = cl.relrowsecurity
FROM pg_class cl WHERE cl.oid = c.source;
UPDATE vk.collections SET order_registered_by = registered_by WHERE group_expression IS NOT NULL;
ALTER TABLE vk.collections ALTER COLUMN registered_by SET NOT NULL;

-- vk.attach gains its row_security argument.
DROP FUNCTION vk.attach(regclass, text, text, text, text);

-- vk.status gains an error column (its counts computed with the author's rights).
DROP VIEW vk.status;
DROP FUNCTION vk._collection_stats(bigint, bigint);
