"""docs/reference/sql.md is what the head release's catalogue says: each public function's
arguments, result, callers and COMMENT, as a fresh install has them (test_catalogue checks that
catalogue against the database)."""

from vectorkeep.app import schema
from vectorkeep.db import migrate


def test_the_sql_reference_is_the_head_releases_catalogue() -> None:
    head = migrate.head_revision()
    assert head is not None
    expected = schema.reference(migrate.release(head))
    assert schema.reference_path().read_text(encoding="utf-8") == expected, (
        "docs/reference/sql.md is stale: run `vectorkeep schema record` (it rewrites the release's catalogue "
        "and this page)"
    )


def test_the_reference_lists_every_public_function_with_its_comment() -> None:
    head = migrate.head_revision()
    assert head is not None
    page = schema.reference_path().read_text(encoding="utf-8")
    for key, props in migrate.release(head).objects.items():
        if key.startswith("function vk.") and not key.startswith("function vk._"):
            assert str(props["comment"]).strip() in page, key
    assert "### `vk._" not in page  # internal functions are not the API
