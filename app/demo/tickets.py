"""Demo tickets for `billing-portal seed-demo`: each demo contact gets a few, some still
open, some being worked on with staff updates, some closed with resolution notes.

Listed in app/demo/seed.py's `SEEDERS`.
"""

from __future__ import annotations

from typing import Literal

from app.demo.context import DemoContext
from app.tickets.schemas import TicketChange, TicketCreate
from app.tickets.service import TicketService

Step = tuple[Literal["staff", "client", "status", "assign", "close"], str]
Scenario = tuple[str, str, str, list[Step]]

SCENARIOS: list[list[Scenario]] = [
    [
        (
            "Front-desk printer offline",
            "The reception printer shows 'offline' since this morning; we restarted it twice.",
            "high",
            [],
        ),
        (
            "Laptop for a new hygienist",
            "Dana starts on Monday and needs a laptop with the charting software.",
            "normal",
            [
                ("assign", ""),
                ("status", "in_progress"),
                ("staff", "Imaging the laptop now; it will be ready Friday afternoon."),
            ],
        ),
        (
            "Restore a deleted patient folder",
            "Someone deleted the 'Referrals 2025' folder on the shared drive yesterday.",
            "urgent",
            [
                ("status", "in_progress"),
                ("staff", "Found it in last night's backup, restoring now."),
                ("close", "Restored 'Referrals 2025' from the 02:00 backup; 214 files checked."),
            ],
        ),
    ],
    [
        (
            "E-filing portal rejects our emails",
            "Messages to the court's e-filing address bounce with '550 rejected'.",
            "high",
            [
                ("assign", ""),
                ("status", "waiting_on_client"),
                ("staff", "Could you forward one of the bounce messages with its headers?"),
            ],
        ),
        (
            "VPN slow when working from home",
            "Opening case files over the VPN takes minutes since last week.",
            "normal",
            [
                ("status", "waiting_on_client"),
                ("staff", "Does it happen on the office Wi-Fi too, or only at home?"),
                ("client", "Only at home, on two different internet providers."),
                ("close", "Moved the VPN to the new gateway and enabled split tunnelling."),
            ],
        ),
    ],
    [
        (
            "Wi-Fi dead zone in warehouse bay 4",
            "Scanners lose the network at the back of bay 4, so picking stalls.",
            "urgent",
            [("assign", ""), ("status", "in_progress")],
        ),
        (
            "Backup failure alert on the file server",
            "We got an email saying last night's backup failed.",
            "normal",
            [
                ("staff", "The backup disk was full; old snapshots are being pruned."),
                ("close", "Pruned snapshots older than 90 days; tonight's backup succeeded."),
            ],
        ),
    ],
]


async def seed_tickets(ctx: DemoContext) -> None:
    staff = TicketService(ctx.session, ctx.principal_for(ctx.staff))
    for index, client in enumerate(ctx.clients):
        contact = TicketService(ctx.session, ctx.principal_for(ctx.contacts[client.id]))
        for subject, description, priority, steps in SCENARIOS[index % len(SCENARIOS)]:
            ticket = await contact.open(
                TicketCreate.model_validate(
                    {"subject": subject, "description": description, "priority": priority}
                )
            )
            for kind, text in steps:
                if kind == "assign":
                    change = TicketChange.model_validate({"assignee_id": ctx.staff.id})
                    await staff.change(ticket.id, change)
                elif kind == "status":
                    await staff.change(ticket.id, TicketChange.model_validate({"status": text}))
                elif kind == "staff":
                    await staff.add_update(ticket.id, text)
                elif kind == "client":
                    await contact.add_update(ticket.id, text)
                else:
                    await staff.close(ticket.id, text)
