"""Adding, renaming, choosing the default and removing a client's payment methods.

Adding talks to the gateway, so it never holds a transaction open across the call: the
client's gateway customer is read (and created) first, the token is attached, and only
then are the method and its platform fee written, together, in one short transaction.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.consents.service import Origin, check_consent, record_consent
from app.core.clock import utcnow
from app.core.db import transaction
from app.core.errors import Unprocessable
from app.core.events import record_event
from app.core.hooks import Hooks
from app.core.principal import ClientPrincipal, Principal
from app.gateways.base import (
    AttachedMethod,
    GatewayError,
    GatewayMethodRejected,
    GatewayUnavailable,
    PaymentGateway,
)
from app.models import PaymentMethod, PlatformFee
from app.models.billing import PAYMENT_METHOD_FEE_AMOUNT, PAYMENT_METHOD_FEE_CURRENCY
from app.payment_methods.errors import (
    DuplicatePaymentMethod,
    GatewayUnavailableError,
    PaymentMethodInUse,
    PaymentMethodRejected,
)
from app.payment_methods.repository import PaymentMethodRepository, PlatformFeeRepository
from app.payment_methods.schemas import PaymentMethodCreate, PaymentMethodOut, PaymentMethodUpdate
from app.tenancy.repository import ClientRepository


class PaymentMethodService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        principal: ClientPrincipal,
        gateway: PaymentGateway,
        hooks: Hooks | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.principal = principal
        self.gateway = gateway
        self.hooks = hooks or Hooks()

    async def add(self, data: PaymentMethodCreate, origin: Origin | None = None) -> PaymentMethod:
        """Attach a token at the gateway and keep the method (a bank account needs the client's
        consent to debits, refused before anything reaches the gateway)."""
        client_id = self.principal.client_id
        if data.type == "ach":
            async with transaction(self.sessionmaker) as session:
                await check_consent(session, self.principal, "ach_debit", data.consent)
        customer = await self._gateway_customer(client_id)
        try:
            attached = await self.gateway.attach_method(
                token=data.token, customer_reference=customer
            )
        except GatewayMethodRejected as exc:
            raise PaymentMethodRejected(_rejection_text(exc), code=exc.code) from exc
        except GatewayUnavailable as exc:
            raise GatewayUnavailableError() from exc
        except GatewayError as exc:
            raise PaymentMethodRejected(exc.message, code=exc.code) from exc
        self._check_attached(data, attached)
        async with transaction(self.sessionmaker) as session:
            method = await self._store(session, client_id, data, attached)
            if method.type == "ach":
                await record_consent(
                    session, self.principal, "ach_debit", data.consent, origin or Origin(None, None)
                )
            await self.hooks.run_payment_method_added(session, self.principal, method)
            return method

    async def _gateway_customer(self, client_id: uuid.UUID) -> str:
        async with transaction(self.sessionmaker) as session:
            client = await ClientRepository(session, self.principal).get(client_id)
            if client is None:
                raise Unprocessable("The caller's client no longer exists.")
            if client.gateway_customer_reference:
                return client.gateway_customer_reference
            name, email = client.name, client.billing_email
        try:
            reference = await self.gateway.create_customer(
                name=name, email=email, metadata={"client_id": str(client_id)}
            )
        except GatewayError as exc:
            raise GatewayUnavailableError() from exc
        async with transaction(self.sessionmaker) as session:
            client = await ClientRepository(session, self.principal).get_or_404(
                client_id, for_update=True
            )
            # Two first cards at once: whoever wrote first wins, the other customer is unused.
            if not client.gateway_customer_reference:
                client.gateway_customer_reference = reference
            return client.gateway_customer_reference

    def _check_attached(self, data: PaymentMethodCreate, attached: AttachedMethod) -> None:
        if attached.type != data.type:
            raise Unprocessable(
                f"The token is for a {attached.type} payment method, not a {data.type}.",
                loc=("body", "type"),
            )
        if attached.exp_year is not None and attached.exp_month is not None:
            today = utcnow().date()
            if (attached.exp_year, attached.exp_month) < (today.year, today.month):
                raise PaymentMethodRejected("The card has expired.", code="expired_card")

    async def _store(
        self,
        session: AsyncSession,
        client_id: uuid.UUID,
        data: PaymentMethodCreate,
        attached: AttachedMethod,
    ) -> PaymentMethod:
        repo = PaymentMethodRepository(session, self.principal)
        await repo.lock_client(client_id)
        live = await repo.live_for_client(client_id)
        if any(m.fingerprint == attached.fingerprint for m in live):
            raise DuplicatePaymentMethod()
        make_default = data.make_default or not any(m.is_default for m in live)
        if make_default:
            await repo.clear_default(client_id, except_id=None)
        method = PaymentMethod(
            tenant_id=self.principal.tenant_id,
            client_id=client_id,
            type=attached.type,
            brand=attached.brand,
            last4=attached.last4,
            exp_month=attached.exp_month,
            exp_year=attached.exp_year,
            fingerprint=attached.fingerprint,
            gateway_reference=attached.reference,
            nickname=data.nickname,
            is_default=make_default,
        )
        repo.add(method)
        await session.flush()
        fee = await self._charge_fee_once(session, method)
        await session.flush()
        method_event(session, method, "payment_method.added", platform_fee=fee)
        return method

    async def _charge_fee_once(self, session: AsyncSession, method: PaymentMethod) -> int:
        fees = PlatformFeeRepository(session, self.principal)
        if await fees.exists_for(method.client_id, method.fingerprint):
            return 0
        fees.add(
            PlatformFee(
                tenant_id=method.tenant_id,
                client_id=method.client_id,
                payment_method_id=method.id,
                fingerprint=method.fingerprint,
                amount=PAYMENT_METHOD_FEE_AMOUNT,
                currency=PAYMENT_METHOD_FEE_CURRENCY,
            )
        )
        return PAYMENT_METHOD_FEE_AMOUNT


async def update_payment_method(
    session: AsyncSession,
    principal: Principal,
    method_id: uuid.UUID,
    data: PaymentMethodUpdate,
) -> PaymentMethod:
    """By the client, or by staff for the method's client."""
    repo, method = await _locked_method(session, principal, method_id)
    changes = data.model_dump(exclude_unset=True)
    if "nickname" in changes:
        method.nickname = changes["nickname"]
    if changes.get("is_default") is True:
        await repo.clear_default(method.client_id, except_id=method.id)
        method.is_default = True
    elif changes.get("is_default") is False:
        method.is_default = False
    await session.flush()
    if changes:
        method_event(session, method, "payment_method.updated")
    return method


async def delete_payment_method(
    session: AsyncSession, principal: Principal, method_id: uuid.UUID, hooks: Hooks
) -> None:
    """By the client, or by staff for the method's client."""
    repo, method = await _locked_method(session, principal, method_id)
    if await hooks.payment_method_is_in_use(session, principal, method):
        raise PaymentMethodInUse()
    method.deleted_at = utcnow()
    if method.is_default:
        method.is_default = False
        others = [m for m in await repo.live_for_client(method.client_id) if m.id != method.id]
        if others:
            others[0].is_default = True  # the newest one left
    await session.flush()
    method_event(session, method, "payment_method.removed")


def method_event(session: AsyncSession, method: PaymentMethod, type_: str, **details: int) -> None:
    record_event(
        session,
        tenant_id=method.tenant_id,
        client_id=method.client_id,
        type=type_,
        subject_type="payment_method",
        subject_id=method.id,
        data=PaymentMethodOut.model_validate(method).model_dump(mode="json"),
        details=details or None,
    )


async def _locked_method(
    session: AsyncSession, principal: Principal, method_id: uuid.UUID
) -> tuple[PaymentMethodRepository, PaymentMethod]:
    """The method, locked after its client's lock (the order adding takes them in), for the
    client it belongs to (staff may act for any of theirs)."""
    if isinstance(principal, ClientPrincipal):
        client_id = principal.client_id
    else:
        client_id = (
            await PaymentMethodRepository(session, principal).get_or_404(method_id)
        ).client_id
    repo = PaymentMethodRepository(session, ClientPrincipal.of(principal, client_id))
    await repo.lock_client(client_id)
    return repo, await repo.get_or_404(method_id, for_update=True)


def _rejection_text(exc: GatewayMethodRejected) -> str:
    if exc.code == "expired_card":
        return "The card has expired."
    if exc.code == "invalid_token":
        return "The token is not valid: tokenize the card or account again."
    return exc.message
