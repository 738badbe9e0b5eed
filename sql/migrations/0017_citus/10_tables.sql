-- vectorkeep 0017: run once by revision 0017_citus, before the current
-- definitions; undone by down.sql.

-- On Citus, the triggers of a distributed table fire on the node that holds
-- the shard, where they may not write to vk.queue (a distributed table); they
-- write the row keys here instead, a plain table of that node, and
-- vk.move_captured_v1 moves them to the queue on that node. vk.distribute()
-- creates the same table on every worker node. Unused on one server.
CREATE TABLE vk.captured (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collection_id bigint NOT NULL,
    pk            text NOT NULL,
    op            "char" NOT NULL CHECK (op IN ('q', 'd', 't')),
    captured_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE vk.captured IS
    'On Citus, per node: row keys the triggers of a distributed table captured (q: queue, d: forget, t: the table was truncated), until vk.move_captured_v1 moves them to vk.queue.';
