"""The vectorkeep command line, run as a user runs it, against a real database."""

import json

import psycopg

from helpers import cli


def ok(url: str, *args: str) -> str:
    done = cli(url, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_attach_worker_status_search_similar(conn: psycopg.Connection, db_url: str) -> None:
    conn.execute("CREATE TABLE recipes (id int PRIMARY KEY, title text, steps text)")
    conn.execute(
        "INSERT INTO recipes VALUES (1, 'Pancakes', 'Whisk flour, eggs and milk; fry in butter.'),"
        " (2, 'Omelette', 'Beat eggs, pour into a hot pan, fold.'),"
        " (3, 'Tax return', 'Collect your income statements and file before April.')"
    )
    assert "collection 'recipes'" in ok(db_url, "attach", "recipes", "--pk", "id", "--text", "title || ': ' || steps")

    status = json.loads(ok(db_url, "status", "--json"))
    recipes = next(s for s in status if s["collection"] == "recipes")
    assert (recipes["rows"], recipes["pending"], recipes["embedded"]) == (3, 3, 0)

    stats = json.loads(ok(db_url, "worker", "--until-idle", "--json"))
    assert stats[0]["embedded"] == 3

    hits = json.loads(ok(db_url, "search", "how to cook eggs", "--collection", "recipes", "-k", "2", "--json"))
    assert {h["pk"] for h in hits} == {"1", "2"}
    assert hits[0]["distance"] <= hits[1]["distance"]

    similar = json.loads(ok(db_url, "similar", "1", "--collection", "recipes", "-k", "1", "--json"))
    assert [s["pk"] for s in similar] == ["2"]

    table = ok(db_url, "status")
    assert "recipes" in table and "minilm@1" in table


def test_models_list_and_register(db_url: str) -> None:
    models = json.loads(ok(db_url, "models", "--json"))
    assert [(m["model"], m["dim"], m["status"]) for m in models] == [("minilm@1", 384, "active")]
    registered = json.loads(
        ok(
            db_url,
            "models",
            "register",
            "mini",
            "--source",
            "sentence-transformers/all-MiniLM-L6-v2",
            "--json",
        )
    )
    assert registered == [
        {
            "model": "mini@1",
            "kind": "sentence-transformers",
            "dim": 384,
            "storage": "vector",
            "distance": "cosine",
            "status": "ready",
        }
    ]
    models = json.loads(ok(db_url, "models", "--json"))
    assert next(m for m in models if m["model"] == "mini@1")["fingerprinted"] is True


def test_errors_are_printed_with_their_hint(db_url: str) -> None:
    done = cli(db_url, "search", "anything", "--collection", "nope")
    assert done.returncode == 1
    assert 'error: vectorkeep: unknown collection "nope"' in done.stderr
    assert "hint: Collections: documents" in done.stderr
    done = cli(db_url, "attach", "missing_table", "--pk", "id", "--text", "body")
    assert done.returncode == 1
    assert 'relation "missing_table" does not exist' in done.stderr


def test_up_embeds_and_shows_a_search(conn: psycopg.Connection, db_url: str) -> None:
    conn.execute(
        "INSERT INTO vk.documents (body) VALUES ('To handle errors, wrap code in try and except blocks.'),"
        " ('A finally clause always runs, to clean up resources.'), ('Bread needs flour, water and yeast.')"
    )
    report = json.loads(ok(db_url, "up", "--exit", "--no-corpus", "--json"))[0]
    assert report["embedded"] == 3
    assert report["search"][0]["body"] in {
        "To handle errors, wrap code in try and except blocks.",
        "A finally clause always runs, to clean up resources.",
    }
    assert report["similar_to"] == report["search"][0]["pk"]
    assert report["status"][0]["embedded"] == 3


def test_train_jobs_activate_retire_from_the_command_line(corpus_url: str) -> None:
    url = corpus_url
    job_id = json.loads(
        ok(url, "train", "cli", "--kind", "tfidf", "--collection", "documents", "--param", "dim=16", "--json")
    )[0]["job"]
    stats = json.loads(ok(url, "worker", "--until-idle", "--json"))[0]
    assert stats["jobs"] == [job_id, job_id + 1]  # the train job, then its reembed job
    assert stats["embedded"] == 400

    shown = json.loads(ok(url, "jobs", "show", str(job_id), "--json"))[0]
    assert (shown["kind"], shown["status"], shown["model"]) == ("train", "succeeded", "cli@1")
    assert shown["snapshot"]["rows"] == 400
    assert [j["kind"] for j in json.loads(ok(url, "jobs", "--json"))] == ["reembed", "train"]

    refused = cli(url, "models", "activate", "cli@1", "--collection", "documents", "--min-metric", "recall@10=1.5")
    assert refused.returncode == 1
    assert "cli@1 fails its gate: recall@10" in refused.stderr
    assert "cli@1 is now the search model of documents" in ok(
        url, "models", "activate", "cli@1", "--collection", "documents"
    )
    hits = json.loads(ok(url, "search", "exceptions and the try statement", "-k", "3", "--json"))
    assert len(hits) == 3
    asked = cli(url, "models", "retire", "minilm@1", "--collection", "documents")
    assert asked.returncode == 1
    assert "deletes its 400 vectors" in asked.stderr and "confirm => true" in asked.stderr
    assert "400 vectors removed" in ok(url, "models", "retire", "minilm@1", "--collection", "documents", "--yes")
    models = {m["model"]: m["status"] for m in json.loads(ok(url, "models", "--json"))}
    assert models == {"minilm@1": "ready", "cli@1": "active"}  # retired from one collection only
    assert "0 vectors removed" in ok(url, "models", "retire", "minilm@1")
    models = {m["model"]: m["status"] for m in json.loads(ok(url, "models", "--json"))}
    assert models == {"minilm@1": "retired", "cli@1": "active"}

    assert "every 24h" in ok(url, "train", "nightly", "--kind", "tfidf", "--collection", "documents", "--every", "24h")
    unnamed = cli(url, "train", "other", "--kind", "tfidf")
    assert unnamed.returncode != 0 and "--collection is required" in unnamed.stderr
