-- Ordered collections: training windows built in SQL, predictions as jobs.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.

-- Declare how a collection's rows form sequences: group_expression names the
-- sequence (e.g. doc_id), position_expression orders rows within it (e.g.
-- chunk_no). Both are SQL expressions over the table; like a text expression
-- they become a function of the caller's (vk_expr.order_c<id>), checked and
-- test-run on real rows here, and always run with the caller's rights.
CREATE OR REPLACE FUNCTION vk.set_order(collection_name text, group_expression text, position_expression text)
RETURNS TABLE (name text, group_by text, position_by text)
LANGUAGE plpgsql AS $$
DECLARE
    c    vk.collections := vk._collection(collection_name);
    expr text;
BEGIN
    FOREACH expr IN ARRAY ARRAY[group_expression, position_expression] LOOP
        IF expr IS NULL OR btrim(expr) = '' OR expr ~ ';' THEN
            RAISE EXCEPTION 'vectorkeep: bad order expression %', coalesce(quote_literal(expr), 'NULL')
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'One SQL expression over the table''s columns each, e.g. doc_id and chunk_no.';
        END IF;
    END LOOP;
    PERFORM vk._record_order(c.id, group_expression, position_expression, current_user);
    PERFORM vk._install_order_function(c.id);
    RETURN QUERY SELECT c.name, group_expression, position_expression;
END
$$;
COMMENT ON FUNCTION vk.set_order(text, text, text) IS
    'Declare a collection''s rows ordered: groups (e.g. documents) and a position within each, SQL expressions run with the caller''s rights; next-vector models train on these sequences.';

CREATE OR REPLACE FUNCTION vk._record_order(c_id bigint, group_expression text, position_expression text, author name)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE vk.collections x SET group_expression = _record_order.group_expression,
                                position_expression = _record_order.position_expression,
                                order_registered_by = author
    -- The author recorded is the caller (or a role it may act as).
    WHERE x.id = c_id AND pg_has_role(session_user, author, 'USAGE');
$$;
COMMENT ON FUNCTION vk._record_order(bigint, text, text, name) IS
    'Internal: store a collection''s order expressions and their author (vk.set_order).';

-- A collection's order as a function of its author's: each row's key, its
-- group and its place in the group (1, 2, ...: by position, then key).
-- client_min_messages: a first install's DROP ... IF EXISTS would say "does not exist, skipping".
CREATE OR REPLACE FUNCTION vk._install_order_function(c_id bigint) RETURNS void
LANGUAGE plpgsql SET client_min_messages = warning AS $$
DECLARE
    c       vk.collections;
    fn      text := format('vk_expr.order_c%s', c_id);
    problem text;
BEGIN
    SELECT * INTO STRICT c FROM vk.collections x WHERE x.id = c_id;
    EXECUTE format('DROP FUNCTION IF EXISTS %s()', fn);
    BEGIN
        EXECUTE format(
            $f$CREATE FUNCTION %1$s() RETURNS TABLE (pk text, group_key text, place bigint)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            BEGIN ATOMIC
                SELECT s.%2$I::text, (%3$s)::text, row_number() OVER (PARTITION BY (%3$s)::text ORDER BY (%4$s), s.%2$I)
                FROM %5$s s;
            END$f$, fn, c.pk_column, c.group_expression, c.position_expression, c.source);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'vectorkeep: order expressions % and % do not evaluate over %: %',
                quote_literal(c.group_expression), quote_literal(c.position_expression), c.source, SQLERRM
            USING ERRCODE = 'invalid_parameter_value';
    END;
    problem := vk._expression_problem(format('%s()', fn)::regprocedure, c.source);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'vectorkeep: order expressions % and % are refused: %',
                quote_literal(c.group_expression), quote_literal(c.position_expression), problem
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Order expressions read only their own row''s columns, which their author may SELECT, '
                      || 'with no subquery and no volatile function.';
    END IF;
    PERFORM vk._seal_expression_function(format('%s()', fn)::regprocedure, c.order_registered_by);
    BEGIN
        EXECUTE format('SELECT count(*) FROM (SELECT * FROM %s() LIMIT 100) x', fn);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'vectorkeep: order expressions % and % fail on rows of %: %',
                quote_literal(c.group_expression), quote_literal(c.position_expression), c.source, SQLERRM
            USING ERRCODE = 'invalid_parameter_value';
    END;
END
$$;
COMMENT ON FUNCTION vk._install_order_function(bigint) IS
    'Internal: write, check and test-run a collection''s order function (vk_expr.order_c<id>) as its author''s.';

CREATE OR REPLACE FUNCTION vk._ordered(c vk.collections) RETURNS vk.collections
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF c.group_expression IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: collection "%" has no order', c.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Declare it: SELECT vk.set_order(%L, ''doc_id'', ''position'');', c.name);
    END IF;
    RETURN c;
END
$$;
COMMENT ON FUNCTION vk._ordered(vk.collections) IS
    'Internal: the collection itself when it has an order (vk.set_order); raises otherwise.';

-- Worker contract: every window of `context` consecutive vectors of (c, m) within
-- a group, with the vector that follows it. A row's vector is its chunk 0.
CREATE OR REPLACE FUNCTION vk.sequence_windows_v1(c_id bigint, m_id bigint, context integer)
RETURNS TABLE (group_key text, target_pk text, context_vectors vector[], target vector)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c vk.collections;
BEGIN
    SELECT * INTO c FROM vk.collections WHERE id = c_id;
    c := vk._ordered(c);
    RETURN QUERY EXECUTE format(
        'SELECT w.g, w.pk, w.ctx, w.v FROM ('
        '  SELECT o.g, o.pk, o.v, array_agg(o.v) OVER win AS ctx, count(*) OVER win AS n'
        '  FROM (SELECT t.group_key AS g, t.place AS p, t.pk, e.embedding AS v'
        '        FROM vk_expr.%I() t JOIN vk.embeddings e ON e.collection_id = $1 AND e.model_id = $2'
        '                                               AND e.chunk = 0 AND e.pk = t.pk) o'
        '  WINDOW win AS (PARTITION BY o.g ORDER BY o.p ROWS BETWEEN $3 PRECEDING AND 1 PRECEDING)) w '
        'WHERE w.n = $3 ORDER BY w.g, w.pk',
        'order_c' || c.id)
        USING c_id, m_id, context;
END
$$;
COMMENT ON FUNCTION vk.sequence_windows_v1(bigint, bigint, integer) IS
    'Worker contract 1: every window of context consecutive row vectors of (collection, model) within a group, with the vector that follows it.';

-- Worker contract: the last n vectors of one group, oldest first.
CREATE OR REPLACE FUNCTION vk.group_tail_v1(c_id bigint, m_id bigint, group_value text, n integer)
RETURNS TABLE (pk text, v vector)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c vk.collections;
BEGIN
    SELECT * INTO c FROM vk.collections WHERE id = c_id;
    c := vk._ordered(c);
    RETURN QUERY EXECUTE format(
        'SELECT t.pk, t.v FROM ('
        '  SELECT o.pk, e.embedding AS v, o.place FROM vk_expr.%I() o'
        '  JOIN vk.embeddings e ON e.collection_id = $1 AND e.model_id = $2 AND e.chunk = 0 AND e.pk = o.pk'
        '  WHERE o.group_key = $3 ORDER BY o.place DESC LIMIT $4) t ORDER BY t.place',
        'order_c' || c.id)
        USING c_id, m_id, group_value, n;
END
$$;
COMMENT ON FUNCTION vk.group_tail_v1(bigint, bigint, text, integer) IS
    'Worker contract 1: the last n row vectors of one group, oldest first.';

-- The next-vector model a collection uses: the one named, else its deployed one.
CREATE OR REPLACE FUNCTION vk._next_vector_model(c vk.collections, model text) RETURNS vk.models
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m vk.models;
BEGIN
    IF model IS NOT NULL THEN
        m := vk._require_usable(vk._require_role(vk.model(model), ARRAY['next-vector'], 'predict next vectors'));
    ELSE
        SELECT x.* INTO m FROM vk.models x JOIN vk.deployments d ON d.model_id = x.id
        WHERE d.collection_id = c.id AND d.role = 'next-vector';
        IF m.id IS NULL THEN
            RAISE EXCEPTION 'vectorkeep: collection "%" has no active next-vector model', c.name
                USING ERRCODE = 'undefined_object',
                      HINT = 'Train one (kind ' || (SELECT string_agg(k.kind, ', ' ORDER BY k.kind) FROM vk.model_kinds k
                                                   WHERE k.role = 'next-vector') || ') and vk.activate it, or name one.';
        END IF;
    END IF;
    IF (m.params ->> 'collection_id')::bigint IS DISTINCT FROM c.id THEN
        RAISE EXCEPTION 'vectorkeep: % is not a next-vector model of collection "%"', vk.model_label(m), c.name
            USING ERRCODE = 'wrong_object_type';
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION vk._next_vector_model(vk.collections, text) IS
    'Internal: the next-vector model of a collection, the one named or its deployed one.';

-- Ask for the vector that should follow a group's rows: a predict job; read
-- the answer with vk.predicted(job_id) once it has succeeded.
CREATE OR REPLACE FUNCTION vk.predict_next(collection text, group_key text, model text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
DECLARE
    c vk.collections := vk._ordered(vk._collection(collection));
    m vk.models := vk._next_vector_model(c, model);
BEGIN
    IF group_key IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: a group key is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- This runs as vk's owner (to queue the job): the checks above were the
    -- owner's, so the caller's are made here, for its login role. Operators
    -- and workers see every collection's copies.
    IF NOT (pg_has_role(session_user, 'vk_worker', 'USAGE') OR pg_has_role(session_user, 'vk_admin', 'USAGE')
            OR has_table_privilege(session_user, c.source, 'SELECT') AND vk._may_use(m, session_user)) THEN
        RAISE EXCEPTION 'vectorkeep: permission denied for collection "%": % may not SELECT % (or use %)',
                c.name, session_user, c.source, vk.model_label(m)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN vk.submit_job_v1('predict', jsonb_build_object('group_key', group_key), c.id, m.id);
END
$$;
COMMENT ON FUNCTION vk.predict_next(text, text, text) IS
    'Queue a predict job: the next vector of a group by the collection''s next-vector model (or the one named). Returns the job id; vk.predicted(job_id) gives the nearest stored texts.';

-- A prediction read back as text: first the text recovered for it when an
-- inverter's text beat the nearest stored one (pk NULL: a generated text),
-- then the k stored rows nearest to it, by the model the predictor learned
-- from. similarity: the cosine of each text, re-embedded, to the prediction.
CREATE OR REPLACE FUNCTION vk.predicted(job_id bigint, k integer DEFAULT 5)
RETURNS TABLE (pk text, body text, similarity double precision, method text, model text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p      vk.predictions;
    j      vk.jobs;
    source vk.models;
BEGIN
    SELECT * INTO p FROM vk.predictions x WHERE x.job_id = predicted.job_id;
    IF p.job_id IS NULL THEN
        SELECT * INTO j FROM vk.jobs x WHERE x.id = predicted.job_id;
        RAISE EXCEPTION 'vectorkeep: job % has no prediction (%)', job_id, coalesce(j.status, 'no such job')
            USING ERRCODE = 'no_data_found',
                  HINT = coalesce('Its error: ' || j.error, 'Wait for a worker to run it (vectorkeep jobs).');
    END IF;
    SELECT x.* INTO source FROM vk.models x
    WHERE x.id = (SELECT (m.params ->> 'source_model_id')::bigint FROM vk.models m WHERE m.id = p.model_id);
    IF p.recovered IS NOT NULL AND p.recovered ->> 'method' <> 'nearest' THEN
        RETURN QUERY SELECT NULL::text, p.recovered ->> 'body', (p.recovered ->> 'similarity')::float8,
                            p.recovered ->> 'method', p.recovered ->> 'model';
    END IF;
    RETURN QUERY
    SELECT s.pk, s.body, vk._similarity(s.distance, source.distance), 'nearest', vk.model_label(source)
    FROM vk.search((SELECT c.name FROM vk.collections c WHERE c.id = p.collection_id), p.vector, k,
                   vk.model_label(source)) s;
END
$$;
COMMENT ON FUNCTION vk.predicted(bigint, integer) IS
    'A predict job''s vector as text: the text an inverter recovered for it when that beat the nearest stored text (pk NULL), then the k stored rows nearest to it; each with its similarity, method and model version.';

CREATE OR REPLACE FUNCTION vk.put_prediction_v1(
    job_id bigint, collection_id bigint, model_id bigint, group_key text, context_pks text[], vector vector
) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO vk.predictions AS p (job_id, collection_id, model_id, group_key, context_pks, vector)
    VALUES (job_id, collection_id, model_id, group_key, context_pks, vector)
    ON CONFLICT ON CONSTRAINT predictions_pkey DO UPDATE
    SET vector = EXCLUDED.vector, context_pks = EXCLUDED.context_pks;
$$;
COMMENT ON FUNCTION vk.put_prediction_v1(bigint, bigint, bigint, text, text[], vector) IS
    'Worker contract 1: store the vector a predict job produced, with the rows it was predicted from.';


CREATE OR REPLACE FUNCTION vk.put_prediction_text_v1(job_id bigint, recovered jsonb) RETURNS void
LANGUAGE sql AS $$
    UPDATE vk.predictions p SET recovered = put_prediction_text_v1.recovered
    WHERE p.job_id = put_prediction_text_v1.job_id;
$$;
COMMENT ON FUNCTION vk.put_prediction_text_v1(bigint, jsonb) IS
    'Worker contract 1: store the text recovered for a predicted vector (body, method, model, similarity, tried).';
