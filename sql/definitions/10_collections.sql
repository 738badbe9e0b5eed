-- Collections: attach a table, the model versions it is embedded with, and
-- each setting a collection has (text and metadata expressions, chunking, the
-- text-search configuration); detach.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.
--
-- Functions that build or drop what a collection owns run as their owner
-- (SECURITY DEFINER) with a fixed search_path, so that no caller's objects can
-- stand in for the ones they use. The expression functions are in
-- 11_expressions.sql, the triggers that queue rows in 12_queue_triggers.sql,
-- the indexes in 13_indexes.sql.

CREATE OR REPLACE FUNCTION vk._collection(collection_name text) RETURNS vk.collections
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
COMMENT ON FUNCTION vk._collection(text) IS 'Internal: the vk.collections row of that name; unknown names raise.';

CREATE OR REPLACE FUNCTION vk.collection_id(collection_name text) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (vk._collection(collection_name)).id
$$;
COMMENT ON FUNCTION vk.collection_id(text) IS
    'The id of a collection (vk.embeddings.collection_id), e.g. WHERE collection_id = vk.collection_id(''documents''); unknown names raise.';

-- The model version a collection is searched with: the named one (which must be
-- embedded for it), or the collection's default.
CREATE OR REPLACE FUNCTION vk._collection_model(c vk.collections, spec text) RETURNS vk.models
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
    RETURN vk._require_usable(m);
END
$$;
COMMENT ON FUNCTION vk._collection_model(vk.collections, text) IS
    'Internal: the ready version a collection is searched with, the named one or its default; raises when the collection is not embedded with it.';

-- Worker contract: the version a collection is searched with (its default, or the one named).
CREATE OR REPLACE FUNCTION vk.collection_model_v1(collection text, spec text) RETURNS vk.models
LANGUAGE sql STABLE
RETURN vk._collection_model(vk._collection(collection), spec);
COMMENT ON FUNCTION vk.collection_model_v1(text, text) IS
    'Worker contract 1: the model version a collection is searched with, its default when spec is NULL.';

-- Register a model version for a collection (the row that makes triggers
-- queue new and changed rows for it); no backfill. Its indexes (HNSW and
-- keyword) are built now, or, for a backfill (with_index false), once the
-- vectors are written (vk.build_index_v1 or CREATE INDEX CONCURRENTLY by the
-- reembed job): one bulk build instead of an index insert per row.
CREATE OR REPLACE FUNCTION vk._embed_with(c vk.collections, m vk.models, with_index boolean) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    ix record;
BEGIN
    IF EXISTS (SELECT 1 FROM vk.collection_models x WHERE x.collection_id = c.id AND x.model_id = m.id) THEN
        RETURN false;
    END IF;
    -- An inverter, a map or a next-vector model makes no vectors from text: its queue rows would never be done.
    PERFORM vk._require_role(m, ARRAY['encoder', 'vectors'], format('embed collection "%s"', c.name));
    IF NOT vk._indexable(m) THEN
        RAISE NOTICE 'vectorkeep: % has % dimensions, over HNSW''s limit for %: % is searched exactly',
            vk.model_label(m), m.dim, m.storage, c.name;
    END IF;
    IF with_index THEN
        FOR ix IN SELECT * FROM vk._index_statements(c, m, false) LOOP
            EXECUTE ix.statement;
        END LOOP;
    END IF;
    INSERT INTO vk.collection_models (collection_id, model_id, index_name)
    VALUES (c.id, m.id, vk._hnsw_index_name(c.id, m.id));
    RETURN true;
END
$$;
COMMENT ON FUNCTION vk._embed_with(vk.collections, vk.models, boolean) IS
    'Internal: keep a collection embedded with a version from now on (the row that makes triggers queue for it, and its HNSW and keyword indexes now or, without with_index, after the backfill); false when it already was.';

-- PL/pgSQL, not a SQL-standard body: a downgrade drops vk._embed_with and keeps this function.
CREATE OR REPLACE FUNCTION vk.embed_with_v1(c vk.collections, m vk.models) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
BEGIN
    RETURN vk._embed_with(c, m, true);
END
$$;
COMMENT ON FUNCTION vk.embed_with_v1(vk.collections, vk.models) IS
    'Worker contract 1: keep a collection embedded with a version from now on (its partial HNSW index, the row that makes triggers queue for it); false when it already was. No backfill.';

-- Keyword ranking's text-search configuration: its indexes are built anew.
CREATE OR REPLACE FUNCTION vk.set_text_search(collection_name text, config regconfig)
RETURNS TABLE (name text, text_search regconfig)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c  vk.collections := vk._collection(collection_name);
    cm vk.collection_models;
BEGIN
    IF config IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: the text-search configuration is NULL'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'See \dF in psql, e.g. english or simple.';
    END IF;
    UPDATE vk.collections x SET text_search = config WHERE x.id = c.id RETURNING * INTO c;
    FOR cm IN SELECT * FROM vk.collection_models x WHERE x.collection_id = c.id LOOP
        EXECUTE format('DROP INDEX IF EXISTS vk.%I', vk._keyword_index_name(c.id, cm.model_id));
        EXECUTE vk._keyword_index_sql(c.id, cm.model_id, c.text_search, false);
        -- BM25's words are the configuration's: counted again (one server; 33_keywords.sql).
        IF NOT vk._citus_table('vk.embeddings') THEN
            PERFORM vk._recount_keywords(c.id, cm.model_id);
        END IF;
    END LOOP;
    RETURN QUERY SELECT c.name, c.text_search;
END
$$;
COMMENT ON FUNCTION vk.set_text_search(text, regconfig) IS
    'Set the text-search configuration (\dF) that keyword ranking (vk.hybrid_search) uses for a collection''s stored text; its full-text indexes are rebuilt and its BM25 statistics counted again.';

-- A version that searches start using at once (the collection's first, or
-- make_default) gets its HNSW index now, and its rows go through it as they
-- are embedded. Any other encoder is a backfill: its rows are written without
-- the index, and a reembed job builds it once they are (vk.activate waits).
CREATE OR REPLACE FUNCTION vk.add_model(collection_name text, model text, make_default boolean DEFAULT false)
RETURNS TABLE (name text, version text, rows_queued bigint)
LANGUAGE plpgsql AS $$
DECLARE
    c        vk.collections := vk._collection(collection_name);
    m        vk.models := vk._encoder_for(c, model, ARRAY['encoder', 'vectors']);
    default_ boolean := make_default OR c.default_model_id IS NULL;
    backfill boolean := NOT default_ AND vk.model_role(m) = 'encoder';
    queued   bigint := 0;
BEGIN
    -- On Citus: it fills the distributed queue, then writes vk.jobs and vk.collections (reference tables).
    PERFORM vk._one_connection_per_node();
    IF vk._embed_with(c, m, NOT backfill) THEN
        EXECUTE format(
            'INSERT INTO vk.queue (collection_id, pk, model_id, priority) SELECT $1, s.%I::text, $2, $3 FROM %s s '
            'ON CONFLICT DO NOTHING', c.pk_column, c.source)
            USING c.id, m.id, CASE WHEN backfill THEN 2 ELSE 1 END;
        GET DIAGNOSTICS queued = ROW_COUNT;
        PERFORM vk._enqueued(c.id, queued);
        IF backfill THEN
            PERFORM vk.submit_job_v1('reembed', '{}', c.id, m.id);
        END IF;
    END IF;
    IF default_ THEN
        UPDATE vk.collections SET default_model_id = m.id WHERE id = c.id;
        UPDATE vk.models SET status = 'active', updated_at = now() WHERE id = m.id AND status = 'ready';
    END IF;
    RETURN QUERY SELECT c.name, vk.model_label(m), queued;
END
$$;
COMMENT ON FUNCTION vk.add_model(text, text, boolean) IS
    'Embed a collection with one more model version and queue every row. The search default (the first model, or make_default) gets its HNSW index at once; any other encoder is a backfill: a reembed job builds its index once its vectors are written (vk.status.index), before it can be activated. Returns the collection, the version and the rows queued.';

-- Rows are told apart by one column with a unique index (the primary key or
-- another); vk.attach and vk.adopt need it.
CREATE OR REPLACE FUNCTION vk._require_key(source regclass, key_column text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = source AND i.indisunique AND i.indnatts = 1 AND i.indpred IS NULL
          AND a.attname = key_column) THEN
        RAISE EXCEPTION 'vectorkeep: column "%" of % has no primary key or unique index of its own', key_column, source
            USING ERRCODE = 'invalid_table_definition',
                  HINT = CASE WHEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = source AND i.indisprimary)
                              THEN 'Use the primary key''s column, or '
                              ELSE 'The table has no primary key: ' END
                      || format('ALTER TABLE %s ADD PRIMARY KEY (%I); or CREATE UNIQUE INDEX ON %s (%I); '
                                '(vectorkeep tells rows apart by it, even when its values happen to be unique).',
                                source, key_column, source, key_column);
    END IF;
END
$$;
COMMENT ON FUNCTION vk._require_key(regclass, text) IS
    'Internal: raises unless the column has a primary key or unique index of its own, saying how to add one.';

-- A row whose text is NULL or blank gets no vector, and only vk.status.empty
-- counts it: the usual cause is one NULL column in a || chain, which makes
-- the whole text NULL. Test-run on the first rows by key, as their author
-- (the caller, who owns the expression functions).
CREATE OR REPLACE FUNCTION vk._warn_empty_texts(c_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c       vk.collections;
    sampled bigint;
    empty   bigint;
    example text;
BEGIN
    SELECT * INTO STRICT c FROM vk.collections x WHERE x.id = c_id;
    EXECUTE format('SELECT count(*), count(*) FILTER (WHERE NOT coalesce(t.body ~ ''[^[:space:]]'', false)), '
                   'min(t.pk) FILTER (WHERE NOT coalesce(t.body ~ ''[^[:space:]]'', false)) '
                   'FROM vk_expr.%I(NULL, 10000) t', 'texts_c' || c.id)
        INTO sampled, empty, example;
    IF empty > 0 THEN
        RAISE WARNING 'vectorkeep: text expression % is NULL or blank for % of the first % rows of % (key % for one): those rows get no vector',
                quote_literal(c.text_expression), empty, sampled, c.source, quote_literal(example)
            USING HINT = format('In SQL, NULL || text is NULL; concat_ws skips NULL columns. Change it in place: '
                                'SELECT vk.set_text(%L, %L);', c.name, 'concat_ws('' '', title, description)');
    END IF;
END
$$;
COMMENT ON FUNCTION vk._warn_empty_texts(bigint) IS
    'Internal: a warning when a collection''s text expression is NULL or blank for some of its first 10,000 rows (they get no vector).';

-- Change what a collection embeds without detaching it: the new expression
-- is checked and test-run as vk.attach does (a bad one changes nothing),
-- then every row whose text changed is queued, at bulk priority past 1,000
-- rows. Each row keeps its old vectors (and keyword postings) until a worker
-- writes its new ones, so searches answer throughout; vk.status shows the
-- queue draining.
CREATE OR REPLACE FUNCTION vk.set_text(collection_name text, expression text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c      vk.collections := vk._collection(collection_name);
    keys   text[];
    queued bigint;
BEGIN
    PERFORM vk._check_text_expression(expression);
    UPDATE vk.collections x SET text_expression = expression, registered_by = current_user
    WHERE x.id = c.id RETURNING * INTO c;
    PERFORM vk._install_text_functions(c.id);
    PERFORM vk._warn_empty_texts(c.id);
    EXECUTE format('SELECT array_agg(t.pk) FROM vk_expr.%I(NULL, NULL) t', 'texts_c' || c.id) INTO keys;
    queued := vk._requeue(c.id, keys, NULL);
    PERFORM vk._enqueued(c.id, queued);
    RETURN queued;
END
$$;
COMMENT ON FUNCTION vk.set_text(text, text) IS
    'Change a collection''s text expression in place (run with the caller''s rights, checked and test-run as in vk.attach) and queue every row whose text changed for every version; each row keeps its old vectors until a worker writes the new ones. Returns the number of (row, version) pairs queued.';

-- Register a table as a collection. text_expression is an SQL expression over
-- the table's columns (e.g. concat_ws(' ', title, body)). It becomes a function of
-- the caller's (vk_expr.text_c<id>): it always runs with the rights of the
-- role that attached the table, never the schema owner's, and is checked and
-- test-run on real rows here (vk._install_text_functions).
CREATE OR REPLACE FUNCTION vk.attach(
    source regclass,
    pk_column text,
    text_expression text,
    model text DEFAULT 'minilm',
    collection_name text DEFAULT NULL,
    row_security text DEFAULT 'refuse',
    metadata text DEFAULT NULL,
    text_search regconfig DEFAULT 'english'
) RETURNS TABLE (name text, search_model text, rows_queued bigint)
LANGUAGE plpgsql AS $$
DECLARE
    c       vk.collections;
    pk_type text;
    rel     record;
BEGIN
    SELECT cl.relname, cl.relkind, cl.relrowsecurity INTO rel FROM pg_class cl WHERE cl.oid = source;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'vectorkeep: % is not a table', source
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF row_security IS NULL OR row_security NOT IN ('refuse', 'copy') THEN
        RAISE EXCEPTION 'vectorkeep: row_security must be refuse or copy, not %', coalesce(row_security, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF rel.relrowsecurity AND row_security = 'refuse' THEN
        RAISE EXCEPTION 'vectorkeep: % has row-level security, and vectorkeep''s copies of its text would not follow its policies', source
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Readers of vk''s copies (vectors, text, search) are checked against table privileges only. '
                      || 'To attach it anyway, knowing that, pass row_security => ''copy''.';
    END IF;
    SELECT format_type(a.atttypid, a.atttypmod) INTO pk_type
    FROM pg_attribute a
    WHERE a.attrelid = source AND a.attname = pk_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF pk_type IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: table % has no column "%"', source, pk_column
            USING ERRCODE = 'undefined_column';
    END IF;
    PERFORM vk._require_key(source, pk_column);
    -- Checked before anything is said about the table's collection: whoever cannot watch it learns nothing.
    IF NOT has_table_privilege(source, 'TRIGGER') THEN
        RAISE EXCEPTION 'vectorkeep: permission denied: % may not create triggers on %', current_user, source
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Attach as the table''s owner (or a role granted TRIGGER on it).';
    END IF;
    SELECT * INTO c FROM vk.collections x WHERE x.source = attach.source;
    IF c.id IS NOT NULL THEN
        RAISE EXCEPTION 'vectorkeep: % is already attached, as collection "%"', source, c.name
            USING ERRCODE = 'duplicate_object',
                  HINT = format('Change it in place (vk.add_model, vk.set_metadata, vk.set_chunking), or SELECT vk.detach(%L); '
                                'first to attach it again (its vectors are deleted).', c.name);
    END IF;
    IF EXISTS (SELECT 1 FROM vk.collections x WHERE x.name = coalesce(collection_name, rel.relname)) THEN
        RAISE EXCEPTION 'vectorkeep: a collection is already named "%"', coalesce(collection_name, rel.relname)
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Pass collection_name => ''another_name''.';
    END IF;
    PERFORM vk._check_text_expression(text_expression);

    IF vk._citus_table('vk.collections') AND NOT vk._citus_table(source) THEN
        RAISE EXCEPTION 'vectorkeep: % is a table of the coordinator only, and vk is distributed over Citus', source
            USING ERRCODE = 'feature_not_supported',
                  HINT = format('Every node must know the table: SELECT create_distributed_table(%L, %L); '
                                '(or create_reference_table for a small one), then attach it.', source::text, pk_column);
    END IF;
    INSERT INTO vk.collections (name, source, pk_column, pk_type, text_expression, registered_by, copies_row_security,
                                text_search)
    VALUES (coalesce(collection_name, rel.relname), source, pk_column, pk_type, text_expression, current_user,
            rel.relrowsecurity, coalesce(text_search, 'english'))
    RETURNING * INTO c;
    PERFORM vk._install_text_functions(c.id);
    PERFORM vk._warn_empty_texts(c.id);
    IF metadata IS NOT NULL THEN
        PERFORM vk.set_metadata(c.name, metadata);
    END IF;

    PERFORM vk._install_insert_trigger(c.id);
    PERFORM vk._install_change_triggers(c.id);

    IF model IS NOT NULL THEN
        PERFORM vk.add_model(c.name, model, true);
    END IF;
    c := vk._collection(c.name);
    -- name || '@' || version, not vk.model_label(m): on Citus a whole row of a
    -- reference table is read as its shard's row type.
    RETURN QUERY SELECT c.name, (SELECT m.name || '@' || m.version FROM vk.models m WHERE m.id = c.default_model_id),
                        (SELECT count(*) FROM vk.queue q WHERE q.collection_id = c.id);
END
$$;
COMMENT ON FUNCTION vk.attach(regclass, text, text, text, text, text, text, regconfig) IS
    'Watch a table: its rows (text = text_expression, run with the caller''s rights) are queued on INSERT and on UPDATE that changes the text, and embedded by workers with the model. Rows already there are queued. metadata: an expression returning a jsonb object that searches filter on (see vk.set_metadata); text_search: the configuration of keyword ranking. A table with row-level security is refused unless row_security => ''copy''. Returns the collection''s name, its search model and the (row, version) pairs queued; a warning names rows whose text is NULL or blank.';

-- A collection's metadata: an SQL expression over the source row returning a
-- jsonb object, e.g. jsonb_build_object('tenant', tenant, 'topic', topic).
-- Like the text expression, it becomes a function of the caller's
-- (vk_expr.meta_c<id>), checked and test-run here. Every row's vectors get
-- their metadata now, and keep it current on UPDATE, without re-embedding.
CREATE OR REPLACE FUNCTION vk.set_metadata(collection_name text, expression text)
RETURNS TABLE (name text, metadata_expression text)
LANGUAGE plpgsql AS $$
DECLARE
    c      vk.collections := vk._collection(collection_name);
    -- A variable: Citus refuses non-immutable functions in a CASE of an UPDATE.
    author name := CASE WHEN expression IS NULL THEN NULL ELSE current_user END;
BEGIN
    IF expression IS NOT NULL AND (btrim(expression) = '' OR expression ~ ';') THEN
        RAISE EXCEPTION 'vectorkeep: bad metadata expression %', quote_literal(expression)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give one SQL expression over the table''s columns returning a jsonb object, '
                      || 'e.g. jsonb_build_object(''tenant'', tenant).';
    END IF;
    UPDATE vk.collections x SET metadata_expression = expression,
                                metadata_registered_by = author
    WHERE x.id = c.id RETURNING * INTO c;
    PERFORM vk._install_metadata_function(c.id);
    PERFORM vk._refresh_metadata(c.id, NULL);
    RETURN QUERY SELECT c.name, c.metadata_expression;
END
$$;
COMMENT ON FUNCTION vk.set_metadata(text, text) IS
    'Set (or, with NULL, remove) a collection''s metadata: an SQL expression over its table''s columns returning a jsonb object (run with the caller''s rights), stored beside every row''s vectors and kept current on UPDATE without re-embedding. Searches take filter => a jsonb object the metadata must contain.';

-- Bring the stored metadata of these rows (NULL: all) up to date, on their
-- vectors and on their queued work. Queue rows first: a row a worker holds
-- (mid-batch) waits for its commit, and the vectors it wrote are then
-- updated here; a queue row updated here stays locked until this transaction
-- commits, so no worker claims it with metadata older than this.
CREATE OR REPLACE FUNCTION vk._refresh_metadata(c_id bigint, keys text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c      vk.collections;
    t_pk   text[];
    t_meta jsonb[];
BEGIN
    SELECT * INTO STRICT c FROM vk.collections x WHERE x.id = c_id;
    IF keys IS NULL THEN
        keys := ARRAY(SELECT DISTINCT q.pk FROM vk.queue q WHERE q.collection_id = c_id
                      UNION SELECT DISTINCT e.pk FROM vk.embeddings e WHERE e.collection_id = c_id);
    END IF;
    IF c.metadata_expression IS NOT NULL THEN
        EXECUTE format('SELECT array_agg(t.pk), array_agg(t.metadata) FROM vk_expr.%I($1) t', 'meta_c' || c_id)
            INTO t_pk, t_meta USING keys;
    END IF;
    UPDATE vk.queue q SET metadata = t.metadata
    FROM unnest(keys) k(pk) LEFT JOIN unnest(t_pk, t_meta) AS t(pk, metadata) ON t.pk = k.pk
    WHERE q.collection_id = c_id AND q.pk = k.pk AND q.metadata IS DISTINCT FROM t.metadata;
    UPDATE vk.embeddings e SET metadata = t.metadata
    FROM unnest(keys) k(pk) LEFT JOIN unnest(t_pk, t_meta) AS t(pk, metadata) ON t.pk = k.pk
    WHERE e.collection_id = c_id AND e.pk = k.pk AND e.metadata IS DISTINCT FROM t.metadata;
END
$$;
COMMENT ON FUNCTION vk._refresh_metadata(bigint, text[]) IS
    'Internal: recompute the metadata of these rows of a collection (NULL: all) on their vectors and queued work.';

-- client_min_messages: a DROP ... IF EXISTS of what was never made would say "does not exist, skipping".
CREATE OR REPLACE FUNCTION vk.detach(collection_name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp
    SET client_min_messages = warning AS $$
DECLARE
    c  vk.collections := vk._collection(collection_name);
    ix name;
BEGIN
    FOR ix IN SELECT index_name FROM vk.collection_models WHERE collection_id = c.id
              UNION ALL SELECT vk._keyword_index_name(c.id, model_id) FROM vk.collection_models WHERE collection_id = c.id LOOP
        EXECUTE format('DROP INDEX IF EXISTS vk.%I', ix);
    END LOOP;
    EXECUTE format('DROP TRIGGER IF EXISTS vk_queue_insert ON %s', c.source);
    EXECUTE format('DROP TRIGGER IF EXISTS vk_queue_update ON %s', c.source);
    EXECUTE format('DROP TRIGGER IF EXISTS vk_forget_delete ON %s', c.source);
    EXECUTE format('DROP TRIGGER IF EXISTS vk_forget_truncate ON %s', c.source);
    EXECUTE format('DROP FUNCTION IF EXISTS %s()', vk._insert_trigger_name(c.id));
    EXECUTE format('DROP FUNCTION IF EXISTS vk_expr.text_c%s(text[])', c.id);
    EXECUTE format('DROP FUNCTION IF EXISTS vk_expr.texts_c%s(text, integer)', c.id);
    EXECUTE format('DROP FUNCTION IF EXISTS vk_expr.order_c%s()', c.id);
    EXECUTE format('DROP FUNCTION IF EXISTS vk_expr.meta_c%s(text[])', c.id);
    -- What the foreign keys cascade to on one server; on Citus these tables have none.
    DELETE FROM vk.queue WHERE collection_id = c.id;
    DELETE FROM vk.embeddings WHERE collection_id = c.id;
    DELETE FROM vk.collections WHERE id = c.id;
END
$$;
COMMENT ON FUNCTION vk.detach(text) IS
    'Stop watching a collection and delete its vectors and queued work; the source table is untouched.';

-- Set a collection's chunking and queue every row again for every model
-- version (the worker re-cuts and replaces each row's chunks in one
-- transaction). size and overlap are in tokens of each version's tokenizer;
-- size NULL means the encoder's window.
CREATE OR REPLACE FUNCTION vk.set_chunking(
    collection_name text,
    method text,
    size integer DEFAULT NULL,
    overlap integer DEFAULT 0
) RETURNS TABLE (name text, chunking jsonb, rows_queued bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c        vk.collections := vk._collection(collection_name);
    setting  jsonb;
    keys     text[];
    queued   bigint := 0;
BEGIN
    IF method IS NULL OR method NOT IN ('none', 'tokens', 'sentences', 'markdown') THEN
        RAISE EXCEPTION 'vectorkeep: unknown chunking method %', coalesce(quote_literal(method), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use none, tokens, sentences or markdown.';
    END IF;
    IF size IS NOT NULL AND size < 1 OR overlap IS NULL OR overlap < 0 OR overlap >= coalesce(size, 2147483647) THEN
        RAISE EXCEPTION 'vectorkeep: chunk size % and overlap %: need size >= 1 and 0 <= overlap < size',
                coalesce(size::text, 'NULL'), coalesce(overlap::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    setting := jsonb_strip_nulls(jsonb_build_object('method', method, 'size', size, 'overlap', overlap));
    IF setting = c.chunking THEN
        RETURN QUERY SELECT c.name, c.chunking, queued;
        RETURN;
    END IF;
    UPDATE vk.collections x SET chunking = setting WHERE x.id = c.id RETURNING * INTO c;
    IF method = 'none' THEN
        -- Search reads one vector a row when unchunked: keep chunk 0 (stale,
        -- queued) until the worker writes the whole text's vector.
        DELETE FROM vk.embeddings e WHERE e.collection_id = c.id AND e.chunk > 0;
    END IF;
    EXECUTE format('SELECT array_agg(s.%I::text) FROM %s s', c.pk_column, c.source) INTO keys;
    queued := vk._queue_keys(c.id, keys, 1::smallint);
    PERFORM vk._enqueued(c.id, queued);
    RETURN QUERY SELECT c.name, c.chunking, queued;
END
$$;
COMMENT ON FUNCTION vk.set_chunking(text, text, integer, integer) IS
    'Cut a collection''s rows before embedding: none, tokens (size, overlap), sentences (packed up to size) or markdown (headings, then sentences); every row is queued again. Returns the collection, its chunking and the (row, version) pairs queued.';
