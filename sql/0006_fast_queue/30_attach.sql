-- attach and detach install and remove the collection's own INSERT trigger function.
-- idempotent: only CREATE OR REPLACE and grants; a later revision may re-apply this file.

CREATE OR REPLACE FUNCTION vk.attach(
    source regclass,
    pk_column text,
    text_expression text,
    model text DEFAULT 'minilm',
    collection_name text DEFAULT NULL
) RETURNS vk.collections
LANGUAGE plpgsql AS $$
DECLARE
    c vk.collections := vk.attach_v1(source, pk_column, text_expression, model, collection_name);
BEGIN
    PERFORM vk.install_insert_trigger_v2(c.id);
    RETURN c;
END
$$;
COMMENT ON FUNCTION vk.attach(regclass, text, text, text, text) IS
    'Watch a table: its rows (text = text_expression) are queued on INSERT and on UPDATE that changes the text, and embedded by workers with the model.';
REVOKE ALL ON FUNCTION vk.attach(regclass, text, text, text, text) FROM PUBLIC, vk_app;
GRANT EXECUTE ON FUNCTION vk.attach(regclass, text, text, text, text) TO vk_worker, vk_admin;

CREATE OR REPLACE FUNCTION vk.detach(collection_name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c vk.collections := vk.collection(collection_name);
BEGIN
    PERFORM vk.detach_v1(collection_name);
    EXECUTE format('DROP FUNCTION IF EXISTS %s()', vk.insert_trigger_name(c.id));
END
$$;
COMMENT ON FUNCTION vk.detach(text) IS
    'Stop watching a collection and delete its vectors and queued work; the source table is untouched.';
REVOKE ALL ON FUNCTION vk.detach(text) FROM PUBLIC, vk_app, vk_worker;
GRANT EXECUTE ON FUNCTION vk.detach(text) TO vk_admin;
