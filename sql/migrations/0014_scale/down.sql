-- Undo revision 0014, before the definitions of 0013 are restored.

-- 0013 knows single precision only: a halfvec version's index is built again
-- over vector, and an index a backfill had not built yet is built now.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT cm.index_name, cm.collection_id, cm.model_id, m.dim, m.distance, m.storage
             FROM vk.collection_models cm JOIN vk.models m ON m.id = cm.model_id
             WHERE m.dim <= 2000 LOOP
        IF r.storage = 'halfvec' THEN
            EXECUTE format('DROP INDEX IF EXISTS vk.%I', r.index_name);
        END IF;
        EXECUTE format(
            'CREATE INDEX IF NOT EXISTS %I ON vk.embeddings USING hnsw ((embedding::vector(%s)) %s) '
            'WHERE collection_id = %s AND model_id = %s',
            r.index_name, r.dim,
            CASE r.distance WHEN 'cosine' THEN 'vector_cosine_ops' WHEN 'l2' THEN 'vector_l2_ops' ELSE 'vector_ip_ops' END,
            r.collection_id, r.model_id);
    END LOOP;
END
$$;

DROP FUNCTION vk._opclass(text, text);
-- vk.models.storage goes in down_90_storage.sql, once 0013's definitions no longer use it.
