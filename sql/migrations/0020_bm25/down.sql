-- Undo revision 0020, before the definitions of 0019 are restored (they
-- drop 0020's triggers and functions and bring back vk.hybrid_search's
-- earlier signature).
DROP FUNCTION vk.hybrid_search(text, text, integer, jsonb, double precision, double precision, text, text);
DROP TABLE vk.keyword_postings, vk.keyword_stats, vk.keyword_norms, vk.hybrid_settings CASCADE;
