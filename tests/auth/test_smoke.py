from httpx import AsyncClient

from tests.factories import PASSWORD, Factory


async def test_sign_in_and_me(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    tokens = await factory.sign_in(world.contact.user.email)
    assert tokens["token_type"] == "bearer"
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 200, me.text
    assert me.json()["client_id"] == str(world.client.id)
    assert me.json()["role"] == "client"
    bad = await client.post(
        "/api/v1/auth/token",
        data={"username": world.contact.user.email, "password": PASSWORD + "x"},
    )
    assert bad.status_code == 401
    assert bad.headers["content-type"] == "application/problem+json"
