"""Ordered collections: declare a collection's rows ordered, predict a group's next vector."""

from typing import Any

from vectorkeep.app.errors import JobFailed
from vectorkeep.app.jobs import OnProgress, wait_for_jobs
from vectorkeep.db.connect import connect
from vectorkeep.sql import query


def set_order(url: str, collection: str, *, group: str, position: str) -> None:
    """Declare a collection's rows ordered: `group` names a row's sequence, `position` orders rows within it."""
    with connect(url) as conn:
        conn.execute(query("set_order"), {"collection": collection, "group": group, "position": position})
        conn.commit()


def predict(
    url: str,
    collection: str,
    group: str,
    *,
    model: str | None = None,
    k: int = 5,
    on_progress: OnProgress | None = None,
) -> list[dict[str, Any]]:
    """Predict a group's next vector (a predict job, waited for); the k stored rows nearest to it."""
    with connect(url) as conn:
        row = conn.execute(
            query("predict_next"), {"collection": collection, "group_key": group, "model": model}
        ).fetchone()
        conn.commit()
    assert row is not None
    job_id = int(row[0])
    job = wait_for_jobs(url, job_id, on_progress=on_progress)[-1]
    if job["status"] != "succeeded":
        raise JobFailed(f"predict job {job_id} {job['status']}: {job.get('error')}")
    with connect(url) as conn, conn.cursor() as cur:
        rows = cur.execute(query("predicted"), {"job_id": job_id, "k": k}).fetchall()
    return [{"pk": r[0], "similarity": round(r[2], 4), "body": r[1]} for r in rows]
