-- vectorkeep 0012: models and jobs an operator can trust. Run once by
-- revision 0012_lifecycle, before the current definitions; undone by down.sql.

-- The kinds of model versions, as the Python registry declares them
-- (vectorkeep/db/kinds.py fills this table at every upgrade). SQL checks
-- roles and job parameters against it.
CREATE TABLE vk.model_kinds (
    kind        text PRIMARY KEY,
    role        text NOT NULL CHECK (role IN ('encoder', 'inverter', 'map', 'next-vector', 'vectors')),
    trainable   boolean NOT NULL,
    loadable    boolean NOT NULL,
    params      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    description text NOT NULL
);
COMMENT ON TABLE vk.model_kinds IS
    'Kinds of model versions and their role (encoder, inverter, map, next-vector, vectors), with the parameters a train job takes: {"name": {"type", "default", "min", "max", "choices", "roles", "help"}}. Filled from the Python registry by every upgrade.';

-- Replaced by vk._train_job, which checks every parameter against vk.model_kinds.
DROP FUNCTION vk._check_train_args(text, text);
DROP FUNCTION vk._trainable_kinds();
