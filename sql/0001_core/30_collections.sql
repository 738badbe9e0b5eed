-- Collections: attaching a table installs the triggers that queue its rows.
-- idempotent: only CREATE OR REPLACE; a later revision may re-apply this file.

CREATE OR REPLACE FUNCTION vk.collection(collection_name text) RETURNS vk.collections
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c vk.collections;
BEGIN
    SELECT * INTO c FROM vk.collections AS x WHERE x.name = collection_name;
    IF c.id IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: unknown collection "%"', collection_name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Collections: ' || coalesce(
                      (SELECT string_agg(x.name, ', ' ORDER BY x.name) FROM vk.collections x), 'none')
                      || '. Attach a table with vk.attach(...).';
    END IF;
    RETURN c;
END
$$;
COMMENT ON FUNCTION vk.collection(text) IS 'The vk.collections row of that name; unknown names raise.';

-- The model version a collection is searched with: the named one (which must be
-- embedded for it), or the collection's default.
CREATE OR REPLACE FUNCTION vk.collection_model(c vk.collections, spec text) RETURNS vk.models
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m vk.models;
BEGIN
    IF spec IS NULL THEN
        SELECT * INTO m FROM vk.models WHERE id = c.default_model_id;
        IF m.id IS NULL THEN
            RAISE EXCEPTION 'vectorkeep: collection "%" has no default model', c.name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Name a model, or add one with vk.add_model(collection, model).';
        END IF;
    ELSIF position('@' IN spec) > 0 THEN
        m := vk.model(spec);
    ELSE
        -- A bare name means the version of it that this collection uses.
        SELECT mm.* INTO m
        FROM vk.collection_models cm JOIN vk.models mm ON mm.id = cm.model_id
        WHERE cm.collection_id = c.id AND mm.name = spec
        ORDER BY mm.id = c.default_model_id DESC, mm.status = 'active' DESC, mm.version DESC
        LIMIT 1;
        IF m.id IS NULL THEN
            m := vk.model(spec);
        END IF;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM vk.collection_models cm
                   WHERE cm.collection_id = c.id AND cm.model_id = m.id) THEN
        RAISE EXCEPTION 'vectorkeep: collection "%" is not embedded with model %', c.name, vk.model_label(m)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Run SELECT vk.add_model(%L, %L); and let a worker embed it.',
                                c.name, vk.model_label(m));
    END IF;
    RETURN vk.require_usable(m);
END
$$;

-- Keep a collection embedded with a model version: record it, build its partial
-- HNSW index, queue every existing row for it.
CREATE OR REPLACE FUNCTION vk.add_model(collection_name text, model text, make_default boolean DEFAULT false)
RETURNS vk.collection_models
LANGUAGE plpgsql AS $$
DECLARE
    c      vk.collections := vk.collection(collection_name);
    m      vk.models := vk.require_usable(vk.model(model));
    cm     vk.collection_models;
    ix     name := format('embeddings_c%s_m%s_hnsw', c.id, m.id);
    queued bigint;
BEGIN
    SELECT * INTO cm FROM vk.collection_models x WHERE x.collection_id = c.id AND x.model_id = m.id;
    IF cm.collection_id IS NULL THEN
        IF m.dim <= 2000 THEN
            EXECUTE format(
                'CREATE INDEX %I ON vk.embeddings USING hnsw ((embedding::vector(%s)) %s) '
                'WHERE collection_id = %s AND model_id = %s',
                ix, m.dim, vk.opclass(m.distance), c.id, m.id);
        ELSE
            RAISE NOTICE 'vectorkeep: % has % dimensions, over HNSW''s 2000: % is searched exactly',
                vk.model_label(m), m.dim, c.name;
        END IF;
        INSERT INTO vk.collection_models (collection_id, model_id, index_name)
        VALUES (c.id, m.id, ix) RETURNING * INTO cm;
        EXECUTE format(
            'INSERT INTO vk.queue (collection_id, pk, model_id) SELECT $1, s.%I::text, $2 FROM %s s '
            'ON CONFLICT DO NOTHING', c.pk_column, c.source)
            USING c.id, m.id;
        GET DIAGNOSTICS queued = ROW_COUNT;
        IF queued > 0 THEN
            PERFORM pg_notify('vk_queue', c.id::text);
        END IF;
    END IF;
    IF make_default OR c.default_model_id IS NULL THEN
        UPDATE vk.collections SET default_model_id = m.id WHERE id = c.id;
        UPDATE vk.models SET status = 'active', updated_at = now() WHERE id = m.id AND status = 'ready';
    END IF;
    RETURN cm;
END
$$;
COMMENT ON FUNCTION vk.add_model(text, text, boolean) IS
    'Embed a collection with a model version: builds its HNSW index and queues every row; the first model becomes the search default.';

CREATE OR REPLACE FUNCTION vk.opclass(distance text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE distance WHEN 'cosine' THEN 'vector_cosine_ops'
                     WHEN 'l2' THEN 'vector_l2_ops'
                     WHEN 'ip' THEN 'vector_ip_ops' END;

CREATE OR REPLACE FUNCTION vk.operator(distance text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE distance WHEN 'cosine' THEN '<=>' WHEN 'l2' THEN '<->' WHEN 'ip' THEN '<#>' END;

-- Register a table as a collection. text_expression is an SQL expression over
-- the table's columns (e.g. title || ' ' || body); it is checked by running it.
CREATE OR REPLACE FUNCTION vk.attach(
    source regclass,
    pk_column text,
    text_expression text,
    model text DEFAULT 'minilm',
    collection_name text DEFAULT NULL
) RETURNS vk.collections
LANGUAGE plpgsql AS $$
DECLARE
    c       vk.collections;
    pk_type text;
    rel     record;
BEGIN
    SELECT cl.relname, cl.relkind INTO rel FROM pg_class cl WHERE cl.oid = source;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'vectorkeep: % is not a table', source
            USING ERRCODE = 'wrong_object_type';
    END IF;
    SELECT format_type(a.atttypid, a.atttypmod) INTO pk_type
    FROM pg_attribute a
    WHERE a.attrelid = source AND a.attname = pk_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF pk_type IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: table % has no column "%"', source, pk_column
            USING ERRCODE = 'undefined_column';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = source AND i.indisunique AND i.indnatts = 1 AND i.indpred IS NULL
          AND a.attname = pk_column) THEN
        RAISE EXCEPTION 'vectorkeep: column "%" of % is not unique', pk_column, source
            USING ERRCODE = 'invalid_table_definition',
                  HINT = 'Attach by the primary key, or a column with a unique index of its own.';
    END IF;
    IF text_expression IS NULL OR btrim(text_expression) = '' OR text_expression ~ ';' THEN
        RAISE EXCEPTION 'vectorkeep: bad text expression %', coalesce(quote_literal(text_expression), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give one SQL expression over the table''s columns, e.g. title || '' '' || body.';
    END IF;
    BEGIN
        -- Parses and type-checks the expression against the table, reading no row.
        EXECUTE format('SELECT (%s)::text FROM %s LIMIT 0', text_expression, source);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'vectorkeep: text expression % does not evaluate over %: %',
                quote_literal(text_expression), source, SQLERRM
            USING ERRCODE = 'invalid_parameter_value';
    END;

    INSERT INTO vk.collections (name, source, pk_column, pk_type, text_expression)
    VALUES (coalesce(collection_name, rel.relname), source, pk_column, pk_type, text_expression)
    RETURNING * INTO c;

    EXECUTE format('CREATE TRIGGER vk_queue_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS vk_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION vk.on_insert_v1(%s)', source, c.id);
    EXECUTE format('CREATE TRIGGER vk_queue_update AFTER UPDATE ON %s '
                   'REFERENCING OLD TABLE AS vk_old NEW TABLE AS vk_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION vk.on_update_v1(%s)', source, c.id);
    EXECUTE format('CREATE TRIGGER vk_forget_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS vk_old '
                   'FOR EACH STATEMENT EXECUTE FUNCTION vk.on_delete_v1(%s)', source, c.id);
    EXECUTE format('CREATE TRIGGER vk_forget_truncate AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION vk.on_truncate_v1(%s)', source, c.id);

    IF model IS NOT NULL THEN
        PERFORM vk.add_model(c.name, model, true);
    END IF;
    RETURN vk.collection(c.name);
END
$$;
COMMENT ON FUNCTION vk.attach(regclass, text, text, text, text) IS
    'Watch a table: its rows (text = text_expression) are queued on INSERT and on UPDATE that changes the text, and embedded by workers with the model.';

CREATE OR REPLACE FUNCTION vk.detach(collection_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c  vk.collections := vk.collection(collection_name);
    ix name;
BEGIN
    FOR ix IN SELECT index_name FROM vk.collection_models WHERE collection_id = c.id LOOP
        EXECUTE format('DROP INDEX IF EXISTS vk.%I', ix);
    END LOOP;
    EXECUTE format('DROP TRIGGER IF EXISTS vk_queue_insert ON %s', c.source);
    EXECUTE format('DROP TRIGGER IF EXISTS vk_queue_update ON %s', c.source);
    EXECUTE format('DROP TRIGGER IF EXISTS vk_forget_delete ON %s', c.source);
    EXECUTE format('DROP TRIGGER IF EXISTS vk_forget_truncate ON %s', c.source);
    DELETE FROM vk.collections WHERE id = c.id;
END
$$;
COMMENT ON FUNCTION vk.detach(text) IS 'Stop watching a collection and delete its vectors and queued work; the source table is untouched.';
