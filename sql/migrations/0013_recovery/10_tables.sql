-- vectorkeep 0013: recovery that beats the nearest stored text. Run once by
-- revision 0013_recovery, before the current definitions; undone by down.sql.

-- The text recovered for a predicted vector by the recovery entry point:
-- {"body", "method", "model", "similarity", "tried": [...]}.
ALTER TABLE vk.predictions ADD COLUMN recovered jsonb
    CHECK (recovered IS NULL OR jsonb_typeof(recovered) = 'object');
COMMENT ON COLUMN vk.predictions.recovered IS
    'The text recovered for the predicted vector (the better of the best ready inverter and the nearest stored text): body, method, model, similarity (cosine of the text re-embedded), and every method tried.';

-- Recovered text by any inverter's method (vk._inverter_method of its kind), not only vec2text's.
ALTER TABLE vk.recovered DROP CONSTRAINT recovered_method_check;
ALTER TABLE vk.recovered ADD CONSTRAINT recovered_method_check CHECK (method ~ '^[a-z][a-z0-9-]*$');

-- Replaced by vk._inverter_for(vk.models, text, text), which also filters by method.
DROP FUNCTION vk._inverter_for(vk.models, text);
-- Its result gains the method and model version of each text.
DROP FUNCTION vk.predicted(bigint, integer);
