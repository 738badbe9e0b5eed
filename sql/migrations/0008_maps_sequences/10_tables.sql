-- vectorkeep 0008: 2D maps of a collection (Parametric UMAP) and next-vector
-- models over ordered rows. Run once by revision 0008_maps_sequences; undone
-- by down.sql.

-- How a collection's rows are ordered: into groups (e.g. a document), by a
-- position within the group. SQL expressions over the table's columns, as
-- text_expression; set with vk.set_order.
ALTER TABLE vk.collections ADD COLUMN group_expression text, ADD COLUMN position_expression text;
COMMENT ON COLUMN vk.collections.group_expression IS 'Rows of one sequence (e.g. a document''s chunks) share this value; see vk.set_order.';
COMMENT ON COLUMN vk.collections.position_expression IS 'Order of a row within its group.';

-- A map (kind umap) draws one collection's vectors of one source model version.
CREATE TABLE vk.maps (
    model_id        bigint PRIMARY KEY REFERENCES vk.models (id) ON DELETE CASCADE,
    collection_id   bigint NOT NULL REFERENCES vk.collections (id) ON DELETE CASCADE,
    source_model_id bigint NOT NULL REFERENCES vk.models (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE vk.maps IS 'Maps (umap versions) and the collection and source model whose vectors they place in 2D; workers keep their coordinates current.';

-- Where each row lands on each map; text_sha256 is the row text its vector came from.
CREATE TABLE vk.coordinates (
    collection_id bigint NOT NULL REFERENCES vk.collections (id) ON DELETE CASCADE,
    pk            text NOT NULL,
    model_id      bigint NOT NULL REFERENCES vk.maps (model_id) ON DELETE CASCADE,
    x             double precision NOT NULL,
    y             double precision NOT NULL,
    text_sha256   bytea NOT NULL,
    computed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_id, pk, model_id)
);
COMMENT ON TABLE vk.coordinates IS 'The 2D position of each row on each map, from its vector (the mean of its chunks'' vectors when chunked).';

-- The map and the next-vector model a collection uses (one of each).
CREATE TABLE vk.deployments (
    collection_id bigint NOT NULL REFERENCES vk.collections (id) ON DELETE CASCADE,
    role          text NOT NULL CHECK (role IN ('map', 'next-vector')),
    model_id      bigint NOT NULL REFERENCES vk.models (id) ON DELETE CASCADE,
    activated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_id, role)
);
COMMENT ON TABLE vk.deployments IS 'The active map and next-vector model of each collection, set by vk.activate once their gates pass.';

-- A next-vector prediction, made by a predict job (vk.predict_next).
CREATE TABLE vk.predictions (
    job_id        bigint PRIMARY KEY REFERENCES vk.jobs (id) ON DELETE CASCADE,
    collection_id bigint NOT NULL REFERENCES vk.collections (id) ON DELETE CASCADE,
    model_id      bigint NOT NULL REFERENCES vk.models (id) ON DELETE CASCADE,
    group_key     text NOT NULL,
    context_pks   text[] NOT NULL,
    vector        vector NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE vk.predictions IS 'Predicted next vectors: the group, the rows it was predicted from (oldest first), the model; vk.predicted(job) gives the nearest stored texts.';

GRANT SELECT ON vk.maps, vk.coordinates, vk.deployments, vk.predictions TO vk_app, vk_worker;
GRANT INSERT, UPDATE, DELETE ON vk.maps, vk.coordinates, vk.predictions TO vk_worker;
GRANT ALL ON vk.maps, vk.coordinates, vk.deployments, vk.predictions TO vk_admin;
