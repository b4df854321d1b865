"""AutoPay's one setting per client: reading it with an ETag, replacing it under If-Match,
and the references it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.clock import FrozenClock
from app.models import AutopaySetting
from tests.factories import assert_problem, count_rows
from tests.scheduling.helpers import AUTOPAY, NO_SUCH_ID, PREVIEW, Scene, build_scene, sibling


def enabled_body(scene: Scene, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "enabled": True,
        "payment_method_id": scene.card["id"],
        "service_category_ids": [str(scene.hosting.id)],
        "days_before_due": 3,
    }
    body.update(changes)
    return body


async def test_a_client_without_a_setting_reads_autopay_off_with_an_etag(scene: Scene) -> None:
    response = await scene.http.get(AUTOPAY, headers=scene.contact)

    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"v0"'
    body = response.json()
    assert body["enabled"] is False
    assert body["payment_method_id"] is None
    assert body["service_category_ids"] == []
    assert body["days_before_due"] == 0
    assert body["client_id"] == str(scene.client.id)


async def test_put_replaces_the_setting_and_get_returns_it_with_the_same_etag(
    scene: Scene,
) -> None:
    put = await scene.put_autopay(
        enabled_body(scene, service_category_ids=[str(scene.hosting.id), str(scene.helpdesk.id)])
    )

    assert put.status_code == 200, put.text
    assert put.headers["ETag"] == '"v1"'
    got = await scene.http.get(AUTOPAY, headers=scene.contact)
    assert got.headers["ETag"] == put.headers["ETag"]
    assert got.json() == put.json()
    body = got.json()
    assert body["enabled"] is True
    assert body["payment_method_id"] == scene.card["id"]
    assert sorted(body["service_category_ids"]) == sorted(
        [str(scene.hosting.id), str(scene.helpdesk.id)]
    )
    assert body["days_before_due"] == 3


async def test_if_match_refuses_a_stale_etag_and_accepts_the_current_one(scene: Scene) -> None:
    first = await scene.http.get(AUTOPAY, headers=scene.contact)
    v0 = first.headers["ETag"]
    changed = await scene.put_autopay(enabled_body(scene), if_match=v0)
    assert changed.status_code == 200, changed.text
    v1 = changed.headers["ETag"]
    assert v1 != v0

    stale = await scene.put_autopay({"enabled": False}, if_match=v0)

    assert_problem(stale, 412)
    still = await scene.http.get(AUTOPAY, headers=scene.contact)
    assert still.json()["enabled"] is True
    assert still.headers["ETag"] == v1

    fresh = await scene.put_autopay({"enabled": False}, if_match=v1)
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["enabled"] is False
    assert fresh.headers["ETag"] not in (v0, v1)
    # A weak form of the same tag, a list containing it, and "*" all match.
    v2 = fresh.headers["ETag"]
    assert (await scene.put_autopay({"enabled": False}, if_match=f"W/{v2}")).status_code == 200
    v3 = (await scene.http.get(AUTOPAY, headers=scene.contact)).headers["ETag"]
    listed = await scene.put_autopay({"enabled": False}, if_match=f'"v999", {v3}')
    assert listed.status_code == 200
    assert (await scene.put_autopay({"enabled": False}, if_match="*")).status_code == 200


async def test_without_if_match_the_last_write_wins(scene: Scene) -> None:
    assert (await scene.put_autopay(enabled_body(scene))).status_code == 200
    second = await scene.put_autopay(enabled_body(scene, days_before_due=7))
    assert second.status_code == 200
    assert second.json()["days_before_due"] == 7
    assert await count_rows(scene.factory, AutopaySetting) == 1


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"payment_method_id": NO_SUCH_ID}, ["body", "payment_method_id"]),
        ({"payment_method_id": None}, ["body", "payment_method_id"]),
        ({"service_category_ids": []}, ["body", "service_category_ids"]),
        ({"service_category_ids": [NO_SUCH_ID]}, ["body", "service_category_ids", 0]),
        ({"days_before_due": 61}, ["body", "days_before_due"]),
        ({"days_before_due": -1}, ["body", "days_before_due"]),
        ({"client_id": NO_SUCH_ID}, ["body", "client_id"]),
        ({"enabled": "sometimes"}, ["body", "enabled"]),
    ],
    ids=[
        "unknown-method",
        "enabled-without-method",
        "enabled-without-categories",
        "unknown-category",
        "days-too-many",
        "days-negative",
        "extra-client-id",
        "not-a-bool",
    ],
)
async def test_invalid_settings_are_422_and_change_nothing(
    scene: Scene, change: dict[str, Any], loc: list[Any]
) -> None:
    before = await scene.http.get(AUTOPAY, headers=scene.contact)

    response = await scene.put_autopay(enabled_body(scene, **change))

    body = assert_problem(response, 422)
    assert loc in [error["loc"] for error in body["errors"]], body
    after = await scene.http.get(AUTOPAY, headers=scene.contact)
    assert after.headers["ETag"] == before.headers["ETag"]
    assert after.json() == before.json()


async def test_another_clients_method_is_422_as_if_it_did_not_exist(scene: Scene) -> None:
    other = await sibling(scene)

    response = await scene.put_autopay(enabled_body(scene, payment_method_id=other.card["id"]))

    body = assert_problem(response, 422)
    assert ["body", "payment_method_id"] in [e["loc"] for e in body["errors"]]


async def test_another_tenants_category_is_422(
    scene: Scene, factory: Any, clock: FrozenClock
) -> None:
    elsewhere = await build_scene(factory, scene.http, name="Other MSP")

    response = await scene.put_autopay(
        enabled_body(scene, service_category_ids=[str(scene.hosting.id), str(elsewhere.hosting.id)])
    )

    body = assert_problem(response, 422)
    assert ["body", "service_category_ids", 1] in [e["loc"] for e in body["errors"]]


async def test_a_deleted_method_cannot_be_chosen(scene: Scene) -> None:
    spare = await scene.add_card("tok_mastercard")
    deleted = await scene.http.delete(
        f"/api/v1/payment-methods/{spare['id']}", headers=scene.contact
    )
    assert deleted.status_code == 204

    response = await scene.put_autopay(enabled_body(scene, payment_method_id=spare["id"]))

    assert_problem(response, 422)


async def test_turning_autopay_off_needs_no_method_or_categories(scene: Scene) -> None:
    assert (await scene.put_autopay(enabled_body(scene))).status_code == 200

    off = await scene.put_autopay({"enabled": False})

    assert off.status_code == 200, off.text
    assert off.json()["enabled"] is False
    assert off.json()["payment_method_id"] is None
    assert off.json()["service_category_ids"] == []


async def test_duplicate_categories_are_kept_once(scene: Scene) -> None:
    hosting = str(scene.hosting.id)
    response = await scene.put_autopay(enabled_body(scene, service_category_ids=[hosting, hosting]))
    assert response.status_code == 200, response.text
    assert response.json()["service_category_ids"] == [hosting]


async def test_staff_read_and_replace_a_clients_setting_only_with_client_id(
    scene: Scene,
) -> None:
    assert (await scene.put_autopay(enabled_body(scene))).status_code == 200
    own = await scene.http.get(AUTOPAY, headers=scene.contact)

    as_staff = await scene.http.get(
        AUTOPAY, params={"client_id": str(scene.client.id)}, headers=scene.staff
    )
    assert as_staff.status_code == 200, as_staff.text
    assert as_staff.json() == own.json()
    assert as_staff.headers["ETag"] == own.headers["ETag"]

    for path in (AUTOPAY, PREVIEW):
        unnamed = await scene.http.get(path, headers=scene.staff)
        body = assert_problem(unnamed, 422)
        assert ["query", "client_id"] in [e["loc"] for e in body["errors"]]
        unknown = await scene.http.get(path, params={"client_id": NO_SUCH_ID}, headers=scene.staff)
        assert_problem(unknown, 404)

    # Staff change it only for the client they name.
    put = await scene.http.put(AUTOPAY, json={"enabled": False}, headers=scene.staff)
    body = assert_problem(put, 422)
    assert ["query", "client_id"] in [e["loc"] for e in body["errors"]]
    named = await scene.http.put(
        AUTOPAY,
        params={"client_id": str(scene.client.id)},
        json={"enabled": False},
        headers=scene.staff,
    )
    assert named.status_code == 200, named.text
    assert named.json()["enabled"] is False


async def test_staff_of_another_tenant_cannot_read_it(
    scene: Scene, factory: Any, clock: FrozenClock
) -> None:
    elsewhere = await build_scene(factory, scene.http, name="Other MSP")

    for path in (AUTOPAY, PREVIEW):
        response = await scene.http.get(
            path, params={"client_id": str(scene.client.id)}, headers=elsewhere.staff
        )
        assert_problem(response, 404)


async def test_a_client_only_ever_reads_and_writes_its_own_setting(scene: Scene) -> None:
    other = await sibling(scene)
    assert (await other.put_autopay(enabled_body(other))).status_code == 200

    # Naming another client in the query changes nothing for a client user.
    mine = await scene.http.get(
        AUTOPAY, params={"client_id": str(other.client.id)}, headers=scene.contact
    )
    assert mine.status_code == 200
    assert mine.json()["client_id"] == str(scene.client.id)
    assert mine.json()["enabled"] is False

    # Writing: there is no field to name another client with.
    smuggled = await scene.put_autopay({"enabled": False, "client_id": str(other.client.id)})
    assert_problem(smuggled, 422)
    theirs = await other.http.get(AUTOPAY, headers=other.contact)
    assert theirs.json()["enabled"] is True


async def test_autopay_needs_a_signed_in_caller(scene: Scene) -> None:
    assert_problem(await scene.http.get(AUTOPAY), 401)
    assert_problem(await scene.http.put(AUTOPAY, json={"enabled": False}), 401)
    assert_problem(await scene.http.get(PREVIEW), 401)
