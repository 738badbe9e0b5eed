-- Maps (Parametric UMAP versions): coordinates follow the vectors they come
-- from; gaps are found in SQL.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.

-- A row whose vectors go (row deleted, text emptied, source version retired)
-- leaves every map drawn from those vectors.
CREATE OR REPLACE FUNCTION vk._forget_coordinates() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
BEGIN
    -- On Citus this fires on a shard (embeddings_<shard id>) on a worker node,
    -- which may not write the distributed vk.coordinates: the functions that
    -- delete vectors there call vk._forget_coordinates_of (20_queue.sql) instead.
    IF TG_TABLE_NAME <> 'embeddings' THEN
        RETURN NULL;
    END IF;
    DELETE FROM vk.coordinates c
    USING vk_gone g, vk.maps mp
    WHERE g.chunk = 0 AND mp.model_id = c.model_id AND mp.source_model_id = g.model_id
      AND c.collection_id = g.collection_id AND c.pk = g.pk;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION vk._forget_coordinates() IS
    'Trigger on vk.embeddings: a row whose vectors go leaves every map drawn from them.';

-- A statement of its own (Citus sends a distributed table's DDL to the nodes
-- as the text of its statement, which must not be this whole file).
DO $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);  -- a trigger on a Citus table
    END IF;
    EXECUTE 'CREATE OR REPLACE TRIGGER embeddings_forget_coordinates '
            'AFTER DELETE ON vk.embeddings REFERENCING OLD TABLE AS vk_gone '
            'FOR EACH STATEMENT EXECUTE FUNCTION vk._forget_coordinates()';
END
$$;

CREATE OR REPLACE FUNCTION vk._map(map_model text) RETURNS vk.maps
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m  vk.models := vk.model(map_model);
    mp vk.maps;
BEGIN
    SELECT * INTO mp FROM vk.maps x WHERE x.model_id = m.id;
    IF mp.model_id IS NULL THEN
        RAISE EXCEPTION 'vectorkeep: % is not a map', vk.model_label(m)
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Train one: SELECT vk.train(''map'', ''umap'', ''{}'', collection);';
    END IF;
    RETURN mp;
END
$$;
COMMENT ON FUNCTION vk._map(text) IS
    'Internal: the vk.maps row of a map version; raises for a version that is not a map.';

-- Empty cells of a cells x cells grid over the map that lie between populated
-- ones: at least min_neighbours of their 8 neighbours hold points, two of
-- them on opposite sides. Most enclosed first; x, y is the cell's centre.
CREATE OR REPLACE FUNCTION vk.map_gaps(map_model text, cells integer DEFAULT 24, min_neighbours integer DEFAULT 3)
RETURNS TABLE (cell_x integer, cell_y integer, x double precision, y double precision, neighbours integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    mp vk.maps := vk._map(map_model);
BEGIN
    IF cells IS NULL OR cells < 3 OR cells > 1000 THEN
        RAISE EXCEPTION 'vectorkeep: cells must be between 3 and 1000, not %', coalesce(cells::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH box AS (
        SELECT min(c.x) AS x0, max(c.x) AS x1, min(c.y) AS y0, max(c.y) AS y1
        FROM vk.coordinates c WHERE c.model_id = mp.model_id),
    filled AS (
        SELECT DISTINCT least(width_bucket(c.x, b.x0, b.x1, cells), cells) AS gx,
                        least(width_bucket(c.y, b.y0, b.y1, cells), cells) AS gy
        FROM vk.coordinates c, box b WHERE c.model_id = mp.model_id AND b.x1 > b.x0 AND b.y1 > b.y0),
    empty AS (
        SELECT g.gx, h.gy FROM generate_series(1, cells) AS g(gx) CROSS JOIN generate_series(1, cells) AS h(gy)
        WHERE NOT EXISTS (SELECT 1 FROM filled f WHERE f.gx = g.gx AND f.gy = h.gy)),
    scored AS (
        SELECT e.gx, e.gy,
               (SELECT count(*) FROM filled f WHERE abs(f.gx - e.gx) <= 1 AND abs(f.gy - e.gy) <= 1)::integer AS n,
               EXISTS (SELECT 1 FROM filled f WHERE f.gx = e.gx - 1 AND f.gy = e.gy)
                   AND EXISTS (SELECT 1 FROM filled f WHERE f.gx = e.gx + 1 AND f.gy = e.gy)
               OR EXISTS (SELECT 1 FROM filled f WHERE f.gy = e.gy - 1 AND f.gx = e.gx)
                   AND EXISTS (SELECT 1 FROM filled f WHERE f.gy = e.gy + 1 AND f.gx = e.gx)
               OR EXISTS (SELECT 1 FROM filled f WHERE f.gx = e.gx - 1 AND f.gy = e.gy - 1)
                   AND EXISTS (SELECT 1 FROM filled f WHERE f.gx = e.gx + 1 AND f.gy = e.gy + 1)
               OR EXISTS (SELECT 1 FROM filled f WHERE f.gx = e.gx - 1 AND f.gy = e.gy + 1)
                   AND EXISTS (SELECT 1 FROM filled f WHERE f.gx = e.gx + 1 AND f.gy = e.gy - 1) AS enclosed
        FROM empty e)
    SELECT s.gx, s.gy,
           b.x0 + (s.gx - 0.5) * (b.x1 - b.x0) / cells,
           b.y0 + (s.gy - 0.5) * (b.y1 - b.y0) / cells,
           s.n
    FROM scored s, box b
    WHERE s.enclosed AND s.n >= min_neighbours
    ORDER BY s.n DESC, s.gx, s.gy;
END
$$;
COMMENT ON FUNCTION vk.map_gaps(text, integer, integer) IS
    'Empty regions of a map: grid cells with no point between populated cells (x, y = the cell''s centre), most enclosed first. vectorkeep map gaps --fill decodes them to vectors and text.';

CREATE OR REPLACE FUNCTION vk.maps_of_v1(collection_id bigint, model_id bigint) RETURNS SETOF bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, @extschema:vector@, pg_temp AS $$
    SELECT mp.model_id FROM vk.maps mp JOIN vk.models m ON m.id = mp.model_id
    WHERE mp.collection_id = maps_of_v1.collection_id AND mp.source_model_id = maps_of_v1.model_id
      AND m.status IN ('ready', 'active');
$$;
COMMENT ON FUNCTION vk.maps_of_v1(bigint, bigint) IS
    'Worker contract 1: the maps still in use that are drawn from a collection''s vectors of a version.';

CREATE OR REPLACE FUNCTION vk.add_map_v1(model_id bigint, collection_id bigint, source_model_id bigint) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO vk.maps (model_id, collection_id, source_model_id)
    VALUES (model_id, collection_id, source_model_id)
    ON CONFLICT ON CONSTRAINT maps_pkey DO NOTHING;
$$;
COMMENT ON FUNCTION vk.add_map_v1(bigint, bigint, bigint) IS
    'Worker contract 1: record a trained map version and the collection and source version it draws.';

CREATE OR REPLACE FUNCTION vk.put_coordinates_v1(
    collection_id bigint, pk text, model_id bigint, x double precision, y double precision, text_sha256 bytea
) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO vk.coordinates AS c (collection_id, pk, model_id, x, y, text_sha256)
    VALUES (collection_id, pk, model_id, x, y, text_sha256)
    ON CONFLICT ON CONSTRAINT coordinates_pkey DO UPDATE
    SET x = EXCLUDED.x, y = EXCLUDED.y, text_sha256 = EXCLUDED.text_sha256, computed_at = EXCLUDED.computed_at;
$$;
COMMENT ON FUNCTION vk.put_coordinates_v1(bigint, text, bigint, double precision, double precision, bytea) IS
    'Worker contract 1: where a row lands on a map, from the vector of the text with that hash.';

