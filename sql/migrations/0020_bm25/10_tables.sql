-- vectorkeep 0020: run once by revision 0020_bm25, before the current
-- definitions; undone by down.sql.

-- BM25 keyword search reads what these keep (33_keywords.sql says how; the
-- triggers on vk.embeddings keep them current). A document is a chunk of a
-- (collection, row, model version), as the vector search ranks them.

-- Each word of each chunk, as the collection's text_search configuration
-- makes it (to_tsvector): how often it occurs there and the chunk's length,
-- to score the chunk exactly; its BM25 weight under the (collection, model)'s
-- norm, the order in which a search reads the chunks that hold a word.
CREATE TABLE vk.keyword_postings (
    collection_id bigint NOT NULL,
    model_id      bigint NOT NULL,
    pk            text NOT NULL,
    chunk         integer NOT NULL,
    term          text NOT NULL,
    tf            integer NOT NULL CHECK (tf > 0),
    length        integer NOT NULL CHECK (length >= tf),
    impact        real NOT NULL,
    PRIMARY KEY (collection_id, model_id, pk, chunk, term) INCLUDE (tf, length)
);
CREATE INDEX keyword_postings_impact_idx
    ON vk.keyword_postings (collection_id, model_id, term, impact DESC) INCLUDE (pk, chunk, tf, length);
COMMENT ON TABLE vk.keyword_postings IS
    'BM25: each word (lexeme) of each chunk of vk.embeddings, with its count there (tf), the chunk''s length in words and its weight under vk.keyword_norms'' norm (impact: the order a search reads).';

-- Document counts, appended by every write and summed when read: a writer
-- never waits on another for a common word's count. vk.compact_keyword_stats_v1
-- (the worker, after each batch) folds each word's rows into one.
CREATE TABLE vk.keyword_stats (
    collection_id bigint NOT NULL,
    model_id      bigint NOT NULL,
    term          text NOT NULL,
    chunks        bigint NOT NULL,
    words         bigint NOT NULL
);
CREATE INDEX keyword_stats_term_idx ON vk.keyword_stats (collection_id, model_id, term) INCLUDE (chunks, words);
COMMENT ON TABLE vk.keyword_stats IS
    'BM25 statistics, summed per (collection_id, model_id, term): chunks holding the word and its occurrences; term '''' counts every chunk and every word. Rows are deltas (one per write) until vk.compact_keyword_stats_v1 folds them.';

-- The mean chunk length the impacts were computed with (a search widens its
-- bounds by the ratio to the current mean, so results stay exact).
CREATE TABLE vk.keyword_norms (
    collection_id bigint NOT NULL,
    model_id      bigint NOT NULL,
    norm          double precision NOT NULL CHECK (norm > 0),
    PRIMARY KEY (collection_id, model_id)
);
COMMENT ON TABLE vk.keyword_norms IS
    'BM25: per (collection, model), the mean chunk length in words that vk.keyword_postings.impact was computed with.';

-- Hybrid search's settings per collection, one version per change (the
-- latest applies): how the two lists are fused and weighted, and, when
-- vk.tune_hybrid chose them, on what and with which result.
CREATE TABLE vk.hybrid_settings (
    collection_id  bigint NOT NULL REFERENCES vk.collections (id) ON DELETE CASCADE,
    version        integer NOT NULL CHECK (version > 0),
    fusion         text NOT NULL CHECK (fusion IN ('convex', 'rrf')),
    keyword_weight double precision NOT NULL CHECK (keyword_weight >= 0 AND keyword_weight < 'Infinity'),
    vector_weight  double precision NOT NULL CHECK (vector_weight >= 0 AND vector_weight < 'Infinity'),
    ndcg_at_10     double precision,
    queries        integer,
    tried          jsonb,
    chosen_by      name NOT NULL DEFAULT current_user,
    chosen_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_id, version),
    CHECK (keyword_weight > 0 OR vector_weight > 0)
);
COMMENT ON TABLE vk.hybrid_settings IS
    'vk.hybrid_search''s defaults per collection, versioned (the highest version applies): fusion (convex or rrf) and weights; ndcg_at_10, queries and tried (every setting tried and its nDCG@10) when vk.tune_hybrid chose them.';

-- A new argument (fusion): the old signature goes, the definitions create the new.
DROP FUNCTION vk.hybrid_search(text, text, integer, jsonb, double precision, double precision, text);
