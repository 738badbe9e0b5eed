"""Plain SQL INSERT/UPDATE -> trigger -> queue -> worker -> versioned vector."""

import hashlib
import threading
import time

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from helpers import app_table, drain, embeddings, on_citus, queue_size, whole_text_chunk
from vectorkeep.db import registry
from vectorkeep.sql import query
from vectorkeep.workers.encoder_cache import EncoderCache


def sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def test_insert_gets_vector_with_model_and_text_hash(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn.execute("INSERT INTO vk.documents (body) VALUES ('The cat sat on the mat.'), ('Stocks fell.')")
    assert queue_size(conn) == 2

    worker = drain(db_url, encoders)

    assert worker.stats.embedded == 2
    assert queue_size(conn) == 0
    vecs = embeddings(conn)
    assert len(vecs) == 2
    for row in vecs.values():
        assert row["model"] == "minilm@1"
        assert row["text_sha256"] == sha(row["body"])
        assert row["embedding"].to_numpy().shape == (384,)
    # The stored vector is the encoder's vector of that exact text.
    cat = next(r for r in vecs.values() if r["body"].startswith("The cat"))
    encoder = encoders.get(conn, registry.by_spec(conn, "minilm@1"))
    expected = encoder.encode(["The cat sat on the mat."])[0]
    assert np.allclose(cat["embedding"].to_numpy(), expected, atol=1e-5)


def test_update_of_text_reembeds_and_other_columns_do_not(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    row = conn.execute("INSERT INTO vk.documents (body) VALUES ('first text') RETURNING id").fetchone()
    assert row is not None
    pk = str(row[0])
    drain(db_url, encoders)
    before = embeddings(conn)[pk]

    conn.execute("UPDATE vk.documents SET metadata = '{\"tag\": 1}' WHERE id = %s", (row[0],))
    assert queue_size(conn) == 0
    assert drain(db_url, encoders).stats.embedded == 0
    assert embeddings(conn)[pk]["computed_at"] == before["computed_at"]

    conn.execute("UPDATE vk.documents SET body = 'second text' WHERE id = %s", (row[0],))
    assert queue_size(conn) == 1
    assert drain(db_url, encoders).stats.embedded == 1
    after = embeddings(conn)[pk]
    assert after["body"] == "second text"
    assert after["text_sha256"] == sha("second text")
    assert not np.allclose(after["embedding"].to_numpy(), before["embedding"].to_numpy())


def test_attached_table_with_multi_column_expression(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn.execute("CREATE TABLE products (sku text PRIMARY KEY, title text, body text, price numeric)")
    app_table(conn, "products", "sku")
    conn.execute("INSERT INTO products VALUES ('a1', 'Red kettle', 'Boils water fast.', 20)")
    # Attaching a table that already has rows queues them.
    conn.execute("SELECT vk.attach('products', 'sku', $$title || '. ' || body$$)")
    assert queue_size(conn) == 1
    conn.execute("INSERT INTO products VALUES ('b2', 'Blue teapot', 'Brews tea.', 30)")

    drain(db_url, encoders)
    vecs = embeddings(conn, "products")
    assert {pk: r["body"] for pk, r in vecs.items()} == {
        "a1": "Red kettle. Boils water fast.",
        "b2": "Blue teapot. Brews tea.",
    }
    conn.execute("UPDATE products SET price = 25")
    assert queue_size(conn) == 0
    conn.execute("UPDATE products SET title = 'Green kettle' WHERE sku = 'a1'")
    drain(db_url, encoders)
    vecs = embeddings(conn, "products")
    assert vecs["a1"]["body"] == "Green kettle. Boils water fast."
    assert vecs["a1"]["text_sha256"] == sha("Green kettle. Boils water fast.")


def test_delete_truncate_and_key_change_forget_vectors(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    app_table(conn, "notes", "id")
    conn.execute("SELECT vk.attach('notes', 'id', 'body')")
    conn.execute("INSERT INTO notes SELECT g, 'note number ' || g FROM generate_series(1, 4) g")
    drain(db_url, encoders)
    assert set(embeddings(conn, "notes")) == {"1", "2", "3", "4"}

    conn.execute("DELETE FROM notes WHERE id = 1")
    if on_citus(conn):
        # Citus refuses to change a row's distribution column: there a new key is a new row.
        conn.execute("DELETE FROM notes WHERE id = 2; INSERT INTO notes VALUES (20, 'note number 2')")
    else:
        conn.execute("UPDATE notes SET id = 20 WHERE id = 2")
    assert set(embeddings(conn, "notes")) == {"3", "4"}
    drain(db_url, encoders)
    assert set(embeddings(conn, "notes")) == {"3", "4", "20"}

    conn.execute("TRUNCATE notes")
    assert embeddings(conn, "notes") == {}
    assert queue_size(conn) == 0


def test_bulk_insert_queues_every_row_and_notifies_once(conn: psycopg.Connection, db_url: str) -> None:
    if on_citus(conn):
        pytest.skip("on Citus the triggers capture on the nodes, where no NOTIFY reaches a listener: workers poll")
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN vk_queue")
        conn.execute("INSERT INTO vk.documents (body) SELECT 'row ' || g FROM generate_series(1, 500) g")
        # Within 50 ms of this session's last notification: debounced, no second one.
        conn.execute("INSERT INTO vk.documents (body) VALUES ('one more')")
        notes = list(listener.notifies(timeout=1.0))
        time.sleep(0.06)
        conn.execute("INSERT INTO vk.documents (body) VALUES ('after the window')")
        later = list(listener.notifies(timeout=1.0))
    assert queue_size(conn) == 502
    # One notification per statement at most, not per row, and not per commit either.
    assert len(notes) == 1 and len(later) == 1
    assert all(n.channel == "vk_queue" and n.payload == "1" for n in notes + later)


def test_rewrite_while_queued_keeps_one_queue_row(conn: psycopg.Connection, db_url: str) -> None:
    row = conn.execute("INSERT INTO vk.documents (body) VALUES ('v1') RETURNING id").fetchone()
    assert row is not None
    for text in ("v2", "v3", "v4"):
        conn.execute("UPDATE vk.documents SET body = %s WHERE id = %s", (text, row[0]))
    assert queue_size(conn) == 1


def test_delete_while_a_worker_holds_the_row_neither_deadlocks_nor_leaves_a_vector(
    conn: psycopg.Connection, db_url: str, encoders: EncoderCache
) -> None:
    conn.execute("INSERT INTO vk.documents (id, body) OVERRIDING SYSTEM VALUE VALUES (1, 'old text')")
    drain(db_url, encoders)
    conn.execute("UPDATE vk.documents SET body = 'new text' WHERE id = 1")
    vector = encoders.get(conn, registry.by_spec(conn, "minilm@1")).encode(["new text"])[0]

    citus = on_citus(conn)
    with psycopg.connect(db_url) as worker:
        register_vector(worker)
        if citus:
            worker.execute("SELECT vk.collect_captured_v1()")  # what a worker does before claiming there
        # A worker mid-batch: the queue row is claimed (locked) ...
        claimed = worker.execute(query("claim"), {"batch_size": 10}).fetchall()
        assert [c[1] for c in claimed] == ["1"]
        # ... while the application deletes the row.
        deleting = threading.Thread(target=conn.execute, args=("DELETE FROM vk.documents WHERE id = 1",))
        deleting.start()
        time.sleep(0.3)
        # It waits for the worker's batch; on Citus it captures the key, which is forgotten once moved.
        assert deleting.is_alive() != citus
        key = {"collection_id": 1, "pk": "1", "model_id": 1}
        worker.execute(query("upsert_chunk"), whole_text_chunk(key, vector, "new text"))
        worker.execute(query("finish_row"), {**key, "chunks": 1})
        worker.commit()
        deleting.join(timeout=10)
        assert not deleting.is_alive()

    assert embeddings(conn) == {}
    assert queue_size(conn) == 0
