-- Re-embedding: a job feeds a collection's rows to the queue one keyset page at
-- a time (constant memory, resumable from the last key), and the workers
-- embed them like any queued row.
-- idempotent: only CREATE OR REPLACE; a later revision may re-apply this file.

-- Worker API: queue the next page of rows after after_key (NULL: from the
-- start) whose vector for (c, m) is missing or stale. Returns the page's last
-- key (NULL when the table is exhausted), the rows read and the rows queued.
CREATE OR REPLACE FUNCTION vk.enqueue_page_v1(c_id bigint, m_id bigint, after_key text, page_size integer)
RETURNS TABLE (last_key text, scanned integer, queued integer)
LANGUAGE plpgsql AS $$
DECLARE
    c vk.collections;
BEGIN
    SELECT * INTO c FROM vk.collections WHERE id = c_id;
    RETURN QUERY EXECUTE format(
        'WITH page AS ('
        '    SELECT s.%1$I AS key, (%2$s)::text AS body FROM %3$s s '
        '    WHERE $3::text IS NULL OR s.%1$I > $3::%4$s ORDER BY s.%1$I LIMIT $4), '
        'todo AS ('
        '    SELECT p.key::text AS pk FROM page p '
        '    WHERE p.body ~ ''[^[:space:]]'' AND NOT EXISTS ('
        '        SELECT 1 FROM vk.embeddings e WHERE e.collection_id = $1 AND e.model_id = $2 '
        '        AND e.pk = p.key::text AND e.text_sha256 = sha256(convert_to(p.body, ''UTF8'')))), '
        'ins AS ('
        '    INSERT INTO vk.queue (collection_id, pk, model_id) SELECT $1, t.pk, $2 FROM todo t '
        '    ON CONFLICT DO NOTHING RETURNING 1) '
        'SELECT (SELECT p.key::text FROM page p ORDER BY p.key DESC LIMIT 1), '
        '       (SELECT count(*) FROM page)::integer, (SELECT count(*) FROM ins)::integer',
        c.pk_column, c.text_expression, c.source, c.pk_type)
        USING c_id, m_id, after_key, page_size;
END
$$;

-- Worker API: the data a job reads, for its record.
CREATE OR REPLACE FUNCTION vk.snapshot_v1(c_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c    vk.collections;
    snap jsonb;
BEGIN
    SELECT * INTO c FROM vk.collections WHERE id = c_id;
    EXECUTE format('SELECT jsonb_build_object(''collection'', %L, ''rows'', count(*), ''max_key'', max(s.%I)::text, '
                   '''at'', now(), ''xmin'', pg_snapshot_xmin(pg_current_snapshot())::text) FROM %s s',
                   c.name, c.pk_column, c.source)
        INTO snap;
    RETURN snap;
END
$$;

-- Worker API: every text of a collection with its key, in key order (streamed
-- by a server-side cursor; held-out rows are chosen by the caller).
CREATE OR REPLACE FUNCTION vk.collection_texts_v1(c_id bigint) RETURNS TABLE (pk text, body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c vk.collections;
BEGIN
    SELECT * INTO c FROM vk.collections WHERE id = c_id;
    RETURN QUERY EXECUTE format(
        'SELECT s.%1$I::text, (%2$s)::text FROM %3$s s WHERE (%2$s)::text ~ ''[^[:space:]]'' ORDER BY s.%1$I',
        c.pk_column, c.text_expression, c.source);
END
$$;
