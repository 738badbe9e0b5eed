-- Wake-ups without a lock per commit: NOTIFY serialises every notifying
-- commit of the cluster (PreCommit_Notify takes one exclusive lock, held
-- through the commit's WAL flush), which cut the INSERT throughput of eight
-- concurrent writers to a quarter. A session now notifies at most once per
-- 50 ms; a row queued in between is still found promptly because a worker,
-- once woken, keeps polling every 50 ms for a while (workers/worker.py,
-- LINGER), and in any case by the worker's regular poll.
-- idempotent: only CREATE OR REPLACE; a later revision may re-apply this file.

-- Called on every INSERT, so no SET clause (its GUC save and restore cost
-- more than the body) and no SECURITY DEFINER: it touches no table, and the
-- catalogue functions it calls are named with their schema.
CREATE OR REPLACE FUNCTION vk.enqueued_v1(c_id bigint, queued bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    now_ms double precision := pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) * 1000;
    last_ms text := pg_catalog.current_setting('vk.queue_notified_ms', true);
BEGIN
    IF queued > 0 AND (coalesce(last_ms, '') = '' OR now_ms - last_ms::double precision >= 50) THEN
        -- A wake-up hint only: workers also poll, so a lost or skipped
        -- notification delays work and never loses it.
        PERFORM pg_catalog.pg_notify('vk_queue', c_id::text);
        -- Session-wide (rolled back with a failed transaction, which then
        -- simply notifies again next time).
        PERFORM pg_catalog.set_config('vk.queue_notified_ms', now_ms::text, false);
    END IF;
END
$$;
-- Revision 0005 made it SECURITY DEFINER with a search_path: no longer.
ALTER FUNCTION vk.enqueued_v1(bigint, bigint) SECURITY INVOKER RESET ALL;
