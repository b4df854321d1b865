"""The MSP's profile and logo, clients, their contacts, service categories and integration
keys (the MSP's side)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Response, UploadFile, status

from app.auth.dependencies import Scoped, StaffDep, StaffOrKey
from app.core.deps import PageDep, SessionDep, SettingsDep
from app.core.errors import problem_responses
from app.core.openapi import response_headers
from app.core.pagination import Page
from app.core.principal import Principal
from app.models import Client, User
from app.tenancy.contacts import ContactService
from app.tenancy.dependencies import ClientPathDep
from app.tenancy.errors import LogoNotFound
from app.tenancy.logo import MAX_LOGO_BYTES, MAX_LOGO_SIDE
from app.tenancy.repository import UserRepository
from app.tenancy.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ClientCreate,
    ClientOut,
    ClientUpdate,
    InvitedUser,
    ServiceCategoryCreate,
    ServiceCategoryOut,
    TenantLogoOut,
    TenantOut,
    TenantUpdate,
    UserInvite,
    UserOut,
    UserPasswordReset,
    UserUpdate,
)
from app.tenancy.service import TenancyService

router = APIRouter()
COMMON = problem_responses(401, 403, 422)

# Staff, or an integration key with the scope.
ClientReader = Annotated[Principal, StaffOrKey("clients:read")]
ClientWriter = Annotated[Principal, StaffOrKey("clients:write")]
# Anyone signed in; a PSA's key reads them to file invoice lines.
CategoryReader = Annotated[Principal, Scoped("invoices:read", "invoices:write")]


@router.get("/tenant", operation_id="getTenant", tags=["tenancy"], responses=COMMON)
async def get_tenant(principal: StaffDep, session: SessionDep) -> TenantOut:
    """The MSP's own profile: what its invoices say about it."""
    service = TenancyService(session, principal)
    return TenantOut.of(await service.tenant.current(), await service.tenant.logo())


@router.patch("/tenant", operation_id="updateTenant", tags=["tenancy"], responses=COMMON)
async def update_tenant(body: TenantUpdate, principal: StaffDep, session: SessionDep) -> TenantOut:
    """Change the MSP's name, address, contact, tax id or payment instructions."""
    service = TenancyService(session, principal)
    tenant = await service.update_tenant(body)
    return TenantOut.of(tenant, await service.tenant.logo())


@router.put(
    "/tenant/logo",
    operation_id="setTenantLogo",
    tags=["tenancy"],
    responses=problem_responses(401, 403, 413, 422),
)
async def set_tenant_logo(
    file: Annotated[
        UploadFile,
        File(
            description=f"A PNG or JPEG image of at most {MAX_LOGO_BYTES // 1024} KiB and "
            f"{MAX_LOGO_SIDE} x {MAX_LOGO_SIDE} pixels, sent as `multipart/form-data`."
        ),
    ],
    principal: StaffDep,
    session: SessionDep,
) -> TenantLogoOut:
    """Set (or replace) the logo printed on invoices. The image is kept as sent; its type is
    read from its content, not from the name or the part's Content-Type."""
    data = await file.read(MAX_LOGO_BYTES + 1)
    logo = await TenancyService(session, principal).set_logo(data)
    return TenantLogoOut.model_validate(logo)


@router.get(
    "/tenant/logo",
    operation_id="getTenantLogo",
    tags=["tenancy"],
    response_class=Response,
    responses={
        200: {
            "content": {"image/png": {}, "image/jpeg": {}},
            "description": "The logo.",
            **response_headers("ETag"),
        },
        **problem_responses(401, 403, 404),
    },
)
async def get_tenant_logo(principal: StaffDep, session: SessionDep) -> Response:
    """The logo as it was uploaded."""
    logo = await TenancyService(session, principal).tenant.logo(with_image=True)
    if logo is None:
        raise LogoNotFound()
    return Response(
        logo.data,
        media_type=logo.content_type,
        headers={"ETag": f'"{logo.sha256}"', "Cache-Control": "private, no-cache"},
    )


@router.delete(
    "/tenant/logo",
    operation_id="deleteTenantLogo",
    tags=["tenancy"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
)
async def delete_tenant_logo(principal: StaffDep, session: SessionDep) -> Response:
    """Remove the logo; invoices are printed without one."""
    await TenancyService(session, principal).remove_logo()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/clients", operation_id="listClients", tags=["clients"], responses=COMMON)
async def list_clients(
    principal: ClientReader, session: SessionDep, page: PageDep
) -> Page[ClientOut]:
    """The MSP's client companies, newest first."""
    items, cursor = await TenancyService(session, principal).clients.page(page)
    return Page(items=[ClientOut.model_validate(c) for c in items], next_cursor=cursor)


@router.post(
    "/clients",
    operation_id="createClient",
    tags=["clients"],
    status_code=status.HTTP_201_CREATED,
    responses=COMMON,
)
async def create_client(
    body: ClientCreate, principal: ClientWriter, session: SessionDep
) -> ClientOut:
    """Add a client company."""
    return ClientOut.model_validate(await TenancyService(session, principal).create_client(body))


@router.get(
    "/clients/{client_id}",
    operation_id="getClient",
    tags=["clients"],
    responses=problem_responses(401, 403, 404, 422),
)
async def get_client(principal: ClientReader, client: ClientPathDep) -> ClientOut:
    """One client company."""
    return ClientOut.model_validate(client)


@router.patch(
    "/clients/{client_id}",
    operation_id="updateClient",
    tags=["clients"],
    responses=problem_responses(401, 403, 404, 422),
)
async def update_client(
    body: ClientUpdate, principal: ClientWriter, client: ClientPathDep, session: SessionDep
) -> ClientOut:
    """Rename a client or change its billing email or billing address."""
    await TenancyService(session, principal).update_client(client, body)
    return ClientOut.model_validate(client)


@router.post(
    "/clients/{client_id}/users",
    operation_id="inviteClientUser",
    tags=["clients"],
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def invite_client_user(
    body: UserInvite,
    principal: StaffDep,
    client: ClientPathDep,
    session: SessionDep,
    settings: SettingsDep,
) -> InvitedUser:
    """Invite a contact of the client: they are emailed a link (3 days, single use) to set
    their password; the temporary password is shown only here. A person already a contact of
    another of your clients gets this client added instead."""
    user, temporary = await ContactService(session, principal, settings).invite(
        client, email=str(body.email), full_name=body.full_name
    )
    return InvitedUser.model_validate(
        {**_contact(user, client).model_dump(), "temporary_password": temporary}
    )


@router.get(
    "/clients/{client_id}/users",
    operation_id="listClientUsers",
    tags=["clients"],
    responses=problem_responses(401, 403, 404, 422),
)
async def list_client_users(
    principal: StaffDep, client: ClientPathDep, session: SessionDep, page: PageDep
) -> Page[UserOut]:
    """The client's contacts."""
    items, cursor = await UserRepository(session, principal).page_for_client(client.id, page)
    return Page(items=[_contact(u, client) for u in items], next_cursor=cursor)


@router.patch(
    "/clients/{client_id}/users/{user_id}",
    operation_id="updateClientUser",
    tags=["clients"],
    responses=problem_responses(401, 403, 404, 422),
)
async def update_client_user(
    user_id: uuid.UUID,
    body: UserUpdate,
    principal: StaffDep,
    client: ClientPathDep,
    session: SessionDep,
    settings: SettingsDep,
) -> UserOut:
    """Rename a contact, or deactivate them (sign-in refused, every session ended at once)
    or reactivate them."""
    service = ContactService(session, principal, settings)
    user = await service.update(client, await service.contact(client, user_id), body)
    return _contact(user, client)


@router.post(
    "/clients/{client_id}/users/{user_id}/reset-password",
    operation_id="resetClientUserPassword",
    tags=["clients"],
    responses=problem_responses(401, 403, 404, 422),
)
async def reset_client_user_password(
    user_id: uuid.UUID,
    principal: StaffDep,
    client: ClientPathDep,
    session: SessionDep,
    settings: SettingsDep,
) -> UserPasswordReset:
    """Give a contact a new temporary password, shown only here; every session they have
    ends and they must change it at their next sign-in."""
    service = ContactService(session, principal, settings)
    user = await service.contact(client, user_id)
    temporary = await service.reset_password(client, user)
    return UserPasswordReset.model_validate(
        {**_contact(user, client).model_dump(), "temporary_password": temporary}
    )


def _contact(user: User, client: Client) -> UserOut:
    """A contact as listed under `client`: `client_id` is that client, whichever other
    companies the person also belongs to."""
    return UserOut.model_validate(user).model_copy(update={"client_id": client.id})


@router.get(
    "/service-categories",
    operation_id="listServiceCategories",
    tags=["service-categories"],
    responses=COMMON,
)
async def list_service_categories(
    principal: CategoryReader, session: SessionDep, page: PageDep
) -> Page[ServiceCategoryOut]:
    """Kinds of service invoice lines belong to (and AutoPay can cover)."""
    items, cursor = await TenancyService(session, principal).categories.page(page)
    return Page(items=[ServiceCategoryOut.model_validate(c) for c in items], next_cursor=cursor)


@router.post(
    "/service-categories",
    operation_id="createServiceCategory",
    tags=["service-categories"],
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_service_category(
    body: ServiceCategoryCreate, principal: StaffDep, session: SessionDep
) -> ServiceCategoryOut:
    """Add a kind of service."""
    category = await TenancyService(session, principal).create_service_category(body.name)
    return ServiceCategoryOut.model_validate(category)


@router.get("/api-keys", operation_id="listApiKeys", tags=["api-keys"], responses=COMMON)
async def list_api_keys(principal: StaffDep, session: SessionDep, page: PageDep) -> Page[ApiKeyOut]:
    """Integration keys (never their secrets)."""
    items, cursor = await TenancyService(session, principal).api_keys.page(page)
    return Page(items=[ApiKeyOut.model_validate(k) for k in items], next_cursor=cursor)


@router.post(
    "/api-keys",
    operation_id="createApiKey",
    tags=["api-keys"],
    status_code=status.HTTP_201_CREATED,
    responses=COMMON,
)
async def create_api_key(
    body: ApiKeyCreate, principal: StaffDep, session: SessionDep
) -> ApiKeyCreated:
    """Create an integration key; its secret is shown only in this response."""
    key, secret = await TenancyService(session, principal).create_api_key(body.name, body.scopes)
    return ApiKeyCreated.model_validate(
        {**ApiKeyOut.model_validate(key).model_dump(), "secret": secret}
    )


@router.delete(
    "/api-keys/{key_id}",
    operation_id="revokeApiKey",
    tags=["api-keys"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
)
async def revoke_api_key(key_id: uuid.UUID, principal: StaffDep, session: SessionDep) -> Response:
    """Revoke an integration key at once."""
    await TenancyService(session, principal).revoke_api_key(key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
