-- What the workers of the previous release (revision 0008, before the worker
-- contract had a version) call by names that are internal now. Kept for one
-- release so that they keep running through the upgrade; the next revision
-- drops this file's functions. The previous release's workers also write the
-- tables directly, which this release leaves as they were.
--
-- Current definitions: every upgrade re-applies this file (CREATE OR REPLACE
-- only); an object that goes away is dropped by a numbered migration.

CREATE OR REPLACE FUNCTION vk.collection(collection_name text) RETURNS vk.collections
LANGUAGE sql STABLE
RETURN vk._collection(collection_name);
COMMENT ON FUNCTION vk.collection(text) IS
    'Deprecated (workers of revision 0008): use vk.collection_v1 or vk.collection_model_v1. Dropped by the next revision.';

CREATE OR REPLACE FUNCTION vk.collection_model(c vk.collections, spec text) RETURNS vk.models
LANGUAGE sql STABLE
RETURN vk._collection_model(c, spec);
COMMENT ON FUNCTION vk.collection_model(vk.collections, text) IS
    'Deprecated (workers of revision 0008): use vk.collection_model_v1. Dropped by the next revision.';
