-- Expression functions: a collection's text and metadata expressions become
-- functions in vk_expr owned by their author (never by vk's owner), generated
-- here, checked against the parse tree before they may stand (no other
-- relation read, nothing volatile), sealed, and dropped with the collection.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.

CREATE OR REPLACE FUNCTION vk._check_text_expression(expression text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF expression IS NULL OR btrim(expression) = '' OR expression ~ ';' THEN
        RAISE EXCEPTION 'vectorkeep: bad text expression %', coalesce(quote_literal(expression), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give one SQL expression over the table''s columns, e.g. concat_ws('' '', title, body).';
    END IF;
END
$$;
COMMENT ON FUNCTION vk._check_text_expression(text) IS
    'Internal: raises unless a text expression is one non-empty SQL expression (no semicolon).';

-- vk_expr.meta_c<id>(keys): the metadata of the given rows, as its author's.
CREATE OR REPLACE FUNCTION vk._install_metadata_function(c_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c       vk.collections;
    problem text;
    fn      text := format('vk_expr.meta_c%s', c_id);
    bad     text;
BEGIN
    SELECT * INTO STRICT c FROM vk.collections x WHERE x.id = c_id;
    PERFORM vk._drop_expression_functions(c_id, 'metadata');
    IF c.metadata_expression IS NULL THEN
        RETURN;
    END IF;
    BEGIN
        EXECUTE format(
            $f$CREATE FUNCTION %1$s(keys text[]) RETURNS TABLE (pk text, metadata jsonb)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            BEGIN ATOMIC
                SELECT s.%2$I::text, (%3$s)::jsonb FROM %4$s s WHERE s.%2$I::text = ANY (keys);
            END$f$, fn, c.pk_column, c.metadata_expression, c.source);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'vectorkeep: metadata expression % does not evaluate over %: %',
                quote_literal(c.metadata_expression), c.source, SQLERRM
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'One SQL expression over the table''s columns returning jsonb, '
                      || 'e.g. jsonb_build_object(''tenant'', tenant, ''topic'', topic).';
    END;
    problem := vk._expression_problem(format('%s(text[])', fn)::regprocedure, c.source);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'vectorkeep: metadata expression % is refused: %', quote_literal(c.metadata_expression), problem
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'A metadata expression reads only its own row''s columns, which its author may SELECT, '
                      || 'with no subquery and no volatile function.';
    END IF;
    PERFORM vk._seal_expression_function(format('%s(text[])', fn)::regprocedure, c.metadata_registered_by);
    -- A test run on real rows, with the author's rights: each must be a jsonb object.
    BEGIN
        EXECUTE format('SELECT min(jsonb_typeof(t.metadata)) FILTER (WHERE jsonb_typeof(t.metadata) <> ''object'') '
                       'FROM %s(ARRAY(SELECT s.%I::text FROM %s s LIMIT 100)) t', fn, c.pk_column, c.source)
            INTO bad;
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'vectorkeep: metadata expression % fails on rows of %: %',
                quote_literal(c.metadata_expression), c.source, SQLERRM
            USING ERRCODE = 'invalid_parameter_value';
    END;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'vectorkeep: metadata expression % returns a jsonb %, not an object', quote_literal(c.metadata_expression), bad
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Wrap it: jsonb_build_object(''name'', value, ...).';
    END IF;
END
$$;
COMMENT ON FUNCTION vk._install_metadata_function(bigint) IS
    'Internal: write, check and test-run a collection''s metadata expression function (vk_expr.meta_c<id>) as its author''s.';

-- Why an expression function may not stand: it reads another relation, has a
-- subquery, calls a volatile function, or uses a column its author may not
-- read. Read from the function's parse tree (SQL-standard body), which names
-- every relation, column and function it uses, built-in ones included.
CREATE OR REPLACE FUNCTION vk._expression_problem(fn regprocedure, source regclass) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    tree text := (SELECT p.prosqlbody::text FROM pg_proc p WHERE p.oid = fn);
    bad  text;
BEGIN
    IF tree ~ ':hasSubLinks true' THEN
        RETURN 'it has a subquery';
    END IF;
    SELECT string_agg(DISTINCT m[1]::oid::regclass::text, ', ') INTO bad
    FROM regexp_matches(tree, ':relid (\d+)', 'g') m WHERE m[1]::oid <> source;
    IF bad IS NOT NULL THEN
        RETURN 'it reads ' || bad;
    END IF;
    SELECT string_agg(DISTINCT p.oid::regprocedure::text, ', ') INTO bad
    FROM regexp_matches(tree, ':(?:funcid|opfuncid|aggfnoid|winfnoid) (\d+)', 'g') m
    JOIN pg_proc p ON p.oid = m[1]::oid
    WHERE p.provolatile = 'v';
    IF bad IS NOT NULL THEN
        RETURN 'it calls volatile ' || bad;
    END IF;
    SELECT string_agg(DISTINCT a.attname, ', ') INTO bad
    FROM regexp_matches(tree, ':varattno (\d+)', 'g') m
    JOIN pg_attribute a ON a.attrelid = source AND a.attnum = m[1]::smallint
    WHERE NOT pg_has_role((SELECT cl.relowner FROM pg_class cl WHERE cl.oid = source), 'USAGE')
      AND NOT has_column_privilege(source, a.attnum, 'SELECT');
    IF bad IS NOT NULL THEN
        RETURN format('%s may not SELECT column(s) %s of %s', current_user, bad, source);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION vk._expression_problem(regprocedure, regclass) IS
    'Internal: why an expression function may not be registered (another relation, a subquery, a volatile function, a column its author may not read), or NULL.';

-- A collection's expression functions belong to whoever wrote them, and only
-- their owner, or vk_expr's owner, may drop them: so that another operator can
-- change an expression (vk.set_text, vk.set_metadata), vk's owner drops the old
-- ones, and the caller creates the new ones as theirs. Only the functions of
-- that collection, by the names vk gives them.
-- client_min_messages: a first install has nothing to drop ("does not exist, skipping").
CREATE OR REPLACE FUNCTION vk._drop_expression_functions(c_id bigint, what text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS $$
BEGIN
    IF what = 'text' THEN
        EXECUTE format('DROP FUNCTION IF EXISTS vk_expr.text_c%s(text[])', c_id);
        EXECUTE format('DROP FUNCTION IF EXISTS vk_expr.texts_c%s(text, integer)', c_id);
    ELSIF what = 'metadata' THEN
        EXECUTE format('DROP FUNCTION IF EXISTS vk_expr.meta_c%s(text[])', c_id);
    ELSE
        RAISE EXCEPTION 'vectorkeep: no expression functions of kind %', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION vk._drop_expression_functions(bigint, text) IS
    'Internal: drop a collection''s text (vk_expr.text_c<id>, texts_c<id>) or metadata (meta_c<id>) functions, whoever wrote them, so that the caller writes the new ones.';

-- Make a function of vk_expr its author's: created by the caller (vk.attach
-- runs as its caller), or handed to the recorded author (the upgrade that
-- introduced authors runs as the schema owner); callable by no one else but
-- vk's own functions (the schema owner).
CREATE OR REPLACE FUNCTION vk._seal_expression_function(fn regprocedure, author name) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    vk_owner name := (SELECT pg_get_userbyid(n.nspowner) FROM pg_namespace n WHERE n.nspname = 'vk');
BEGIN
    IF author <> current_user THEN
        EXECUTE format('GRANT CREATE ON SCHEMA vk_expr TO %I', author);
        EXECUTE format('ALTER FUNCTION %s OWNER TO %I', fn, author);
        EXECUTE format('REVOKE CREATE ON SCHEMA vk_expr FROM %I', author);
    END IF;
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', fn, vk_owner);
END
$$;
COMMENT ON FUNCTION vk._seal_expression_function(regprocedure, name) IS
    'Internal: give an expression function to its author and let only vk''s owner call it.';

-- A collection's text expression as two functions of its author's:
-- vk_expr.text_c<id>(keys) for given rows and vk_expr.texts_c<id>(after, page)
-- for a keyset page in key order (NULL, NULL: every row). SQL-standard bodies:
-- names are bound here, once, so no search_path can change what they mean.
CREATE OR REPLACE FUNCTION vk._install_text_functions(c_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c       vk.collections;
    problem text;
    one_fn  text := format('vk_expr.text_c%s', c_id);
    page_fn text := format('vk_expr.texts_c%s', c_id);
BEGIN
    SELECT * INTO STRICT c FROM vk.collections x WHERE x.id = c_id;
    PERFORM vk._drop_expression_functions(c_id, 'text');
    BEGIN
        EXECUTE format(
            $f$CREATE FUNCTION %1$s(keys text[]) RETURNS TABLE (pk text, body text)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            BEGIN ATOMIC
                SELECT s.%3$I::text, (%4$s)::text FROM %5$s s WHERE s.%3$I = ANY ($1::%6$s[]);
            END$f$, one_fn, page_fn, c.pk_column, c.text_expression, c.source, c.pk_type);
        EXECUTE format(
            $f$CREATE FUNCTION %2$s(after_key text, page integer) RETURNS TABLE (pk text, body text)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            BEGIN ATOMIC
                SELECT x.pk, x.body FROM (
                    SELECT s.%3$I AS k, s.%3$I::text AS pk, (%4$s)::text AS body FROM %5$s s WHERE $1 IS NULL
                    UNION ALL
                    SELECT s.%3$I, s.%3$I::text, (%4$s)::text FROM %5$s s WHERE s.%3$I > $1::%6$s) x
                ORDER BY x.k LIMIT $2;
            END$f$, one_fn, page_fn, c.pk_column, c.text_expression, c.source, c.pk_type);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'vectorkeep: text expression % does not evaluate over %: %',
                quote_literal(c.text_expression), c.source, SQLERRM
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'One SQL expression over the table''s columns, unqualified, e.g. title || '' '' || body.';
    END;
    problem := vk._expression_problem(format('%s(text[])', one_fn)::regprocedure, c.source);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'vectorkeep: text expression % is refused: %', quote_literal(c.text_expression), problem
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'A text expression reads only its own row''s columns, which its author may SELECT, '
                      || 'with no subquery and no volatile function.';
    END IF;
    PERFORM vk._seal_expression_function(format('%s(text[])', one_fn)::regprocedure, c.registered_by);
    PERFORM vk._seal_expression_function(format('%s(text, integer)', page_fn)::regprocedure, c.registered_by);
    -- A test run on real rows, with the author's rights.
    BEGIN
        EXECUTE format('SELECT count(*) FROM %s(NULL, 100)', page_fn);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'vectorkeep: text expression % fails on rows of %: %',
                quote_literal(c.text_expression), c.source, SQLERRM
            USING ERRCODE = 'invalid_parameter_value';
    END;
END
$$;
COMMENT ON FUNCTION vk._install_text_functions(bigint) IS
    'Internal: write, check and test-run a collection''s text expression functions (vk_expr.text_c<id>, vk_expr.texts_c<id>) as its author''s.';
