"""The MSP's logo (`PUT/GET/DELETE /tenant/logo`, staff only): a real PNG or JPEG within
bounds is kept as sent and printed on invoices; anything else is refused when uploaded."""

from __future__ import annotations

import hashlib
import io
import random

import pytest
from httpx import AsyncClient, Response
from PIL import Image

from app.core.config import Settings
from app.models import TenantLogo
from app.tenancy.logo import MAX_LOGO_BYTES
from tests.factories import Factory, Person, api_key_for, assert_problem, bearer, count_rows

TENANT = "/api/v1/tenant"
LOGO = f"{TENANT}/logo"


def image(kind: str, size: tuple[int, int] = (240, 80), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 128 if mode in ("L", "P") else (20, 90, 160)).save(buffer, kind)
    return buffer.getvalue()


async def upload(
    client: AsyncClient, person: Person, data: bytes, name: str = "logo.png"
) -> Response:
    return await client.put(
        LOGO, files={"file": (name, data, "application/octet-stream")}, headers=person.headers
    )


@pytest.mark.parametrize(
    ("kind", "mode", "content_type"),
    [
        ("PNG", "RGB", "image/png"),
        ("PNG", "RGBA", "image/png"),
        ("PNG", "P", "image/png"),
        ("PNG", "L", "image/png"),
        ("JPEG", "RGB", "image/jpeg"),
        ("JPEG", "L", "image/jpeg"),
    ],
)
async def test_staff_upload_a_logo_and_get_it_back(
    client: AsyncClient, factory: Factory, kind: str, mode: str, content_type: str
) -> None:
    world = await factory.world()
    data = image(kind, (300, 120), mode)

    # The type is read from the image itself: the name and the part's type say nothing.
    response = await upload(client, world.staff, data, name="logo.bin")

    assert response.status_code == 200, response.text
    metadata = response.json()
    assert metadata == {
        "content_type": content_type,
        "width": 300,
        "height": 120,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "updated_at": metadata["updated_at"],
    }
    assert (await client.get(TENANT, headers=world.staff.headers)).json()["logo"] == metadata
    fetched = await client.get(LOGO, headers=world.staff.headers)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == content_type
    assert fetched.content == data


async def test_a_new_logo_replaces_the_old_and_a_removed_one_is_gone(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    assert (await upload(client, world.staff, image("PNG"))).status_code == 200
    jpeg = image("JPEG", (50, 50))
    assert (await upload(client, world.staff, jpeg)).json()["content_type"] == "image/jpeg"
    assert (await client.get(LOGO, headers=world.staff.headers)).content == jpeg
    assert await count_rows(factory, TenantLogo) == 1

    removed = await client.delete(LOGO, headers=world.staff.headers)

    assert removed.status_code == 204
    assert (await client.get(TENANT, headers=world.staff.headers)).json()["logo"] is None
    assert_problem(await client.get(LOGO, headers=world.staff.headers), 404)
    assert_problem(await client.delete(LOGO, headers=world.staff.headers), 404)
    assert await count_rows(factory, TenantLogo) == 0


def truncated_png() -> bytes:
    data = image("PNG", (400, 400))
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"%PDF-1.7 not an image", id="not-an-image"),
        pytest.param(b"<svg xmlns='http://www.w3.org/2000/svg'/>", id="svg"),
        pytest.param(image("GIF"), id="gif"),
        pytest.param(image("BMP"), id="bmp"),
        pytest.param(truncated_png(), id="truncated-png"),
        pytest.param(image("PNG", (4097, 10)), id="too-wide"),
        pytest.param(image("PNG", (10, 4097), "L"), id="too-tall"),
    ],
)
async def test_what_is_not_a_usable_png_or_jpeg_is_refused(
    client: AsyncClient, factory: Factory, data: bytes
) -> None:
    world = await factory.world()
    problem = assert_problem(await upload(client, world.staff, data), 422, "validation-error")
    assert problem["errors"][0]["loc"] == ["body", "file"]
    assert await count_rows(factory, TenantLogo) == 0


async def test_a_logo_too_large_is_refused(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    world = await factory.world()
    # Noise does not compress: its PNG is over the logo's bound, under the request's.
    noise = Image.frombytes("RGB", (450, 450), random.Random(7).randbytes(450 * 450 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    assert MAX_LOGO_BYTES < len(buffer.getvalue()) < settings.max_body_bytes - 1024
    problem = assert_problem(await upload(client, world.staff, buffer.getvalue()), 413)
    assert problem["detail"] == "A logo may be at most 512 KiB."
    assert await count_rows(factory, TenantLogo) == 0


async def test_a_missing_file_is_refused(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.put(LOGO, headers=world.staff.headers)
    assert_problem(response, 422)
    response = await client.put(
        LOGO, files={"other": ("x.png", image("PNG"), "image/png")}, headers=world.staff.headers
    )
    assert_problem(response, 422)


async def test_only_staff_touch_the_logo_and_only_their_own(
    client: AsyncClient, factory: Factory
) -> None:
    ours = await factory.world("Northwind")
    theirs = await factory.world("Southwind")
    _key, secret = await api_key_for(factory, ours.tenant)
    assert (await upload(client, ours.staff, image("PNG"))).status_code == 200

    for headers in (ours.contact.headers, bearer(secret)):
        assert_problem(await client.get(LOGO, headers=headers), 403)
        assert_problem(await client.delete(LOGO, headers=headers), 403)
        response = await client.put(
            LOGO, files={"file": ("x.png", image("PNG"), "image/png")}, headers=headers
        )
        assert_problem(response, 403)
    assert_problem(await client.get(LOGO), 401)
    assert_problem(await client.get(LOGO, headers=theirs.staff.headers), 404)
    assert_problem(await client.delete(LOGO, headers=theirs.staff.headers), 404)
    assert (await client.get(LOGO, headers=ours.staff.headers)).status_code == 200
