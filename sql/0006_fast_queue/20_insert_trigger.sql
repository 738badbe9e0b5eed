-- The INSERT trigger of each collection is a function of its own with a
-- static statement: PL/pgSQL caches its plan, where the generic
-- vk.on_insert_v1 parsed and planned a dynamic statement on every INSERT
-- (a third of a single-row INSERT's cost, measured in bench/triggers.py).
-- idempotent: only CREATE OR REPLACE; a later revision may re-apply this file.

CREATE OR REPLACE FUNCTION vk.insert_trigger_name(collection_id bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN format('vk.on_insert_c%s', collection_id);

-- (Re)create a collection's INSERT trigger function and point its trigger at it.
CREATE OR REPLACE FUNCTION vk.install_insert_trigger_v2(collection_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c  vk.collections;
    fn text := vk.insert_trigger_name(collection_id);
BEGIN
    SELECT * INTO STRICT c FROM vk.collections x WHERE x.id = collection_id;
    EXECUTE format(
        $f$CREATE OR REPLACE FUNCTION %1$s() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
        BEGIN
            INSERT INTO vk.queue AS q (collection_id, pk, model_id)
            SELECT %2$s, n.%3$I::text, cm.model_id FROM vk_new n
            CROSS JOIN vk.collection_models cm WHERE cm.collection_id = %2$s
            ON CONFLICT (collection_id, pk, model_id) DO UPDATE
            SET enqueued_at = now(), run_after = now(), attempts = 0, last_error = NULL, dead = false;
            IF FOUND THEN
                PERFORM vk.enqueued_v1(%2$s, 1);
            END IF;
            RETURN NULL;
        END
        $body$ $f$, fn, c.id, c.pk_column);
    EXECUTE format('COMMENT ON FUNCTION %s() IS %L', fn,
                   format('vectorkeep: queues the rows inserted into %s (collection %s).', c.source, c.name));
    EXECUTE format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', fn);
    EXECUTE format('DROP TRIGGER IF EXISTS vk_queue_insert ON %s', c.source);
    EXECUTE format('CREATE TRIGGER vk_queue_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS vk_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION %s()', c.source, fn);
END
$$;
REVOKE ALL ON FUNCTION vk.install_insert_trigger_v2(bigint) FROM PUBLIC, vk_app;
GRANT EXECUTE ON FUNCTION vk.install_insert_trigger_v2(bigint) TO vk_worker, vk_admin;
REVOKE ALL ON FUNCTION vk.insert_trigger_name(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vk.insert_trigger_name(bigint) TO vk_worker, vk_admin;
