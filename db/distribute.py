"""vk over Citus: `vectorkeep distribute` runs vk.distribute() (sql/definitions/90_citus.sql) on the
coordinator. Idempotent: a second run changes nothing and reports the same placement."""

from dataclasses import dataclass

from psycopg.rows import class_row

from vectorkeep.db.connect import connect
from vectorkeep.sql import query


@dataclass(frozen=True)
class Placement:
    table_name: str
    citus_table_type: str  # distributed or reference
    distribution_column: str | None
    shard_count: int


def distribute(url: str, shards: int | None = None, embeddings_by: str = "collection_id") -> list[Placement]:
    """Distribute vk (and the tables attached to it) over the Citus cluster of this coordinator.

    shards: shards per distributed table (Citus's citus.shard_count when None); embeddings_by: collection_id
    (a collection on one shard) or pk (a collection over every shard). Both are ignored for the tables
    already distributed.
    """
    with connect(url, autocommit=True) as conn, conn.cursor(row_factory=class_row(Placement)) as cur:
        return cur.execute(query("distribute"), {"shards": shards, "embeddings_by": embeddings_by}).fetchall()
