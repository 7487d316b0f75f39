"""Fill the django-helpdesk peer's database with the comparison's data set, through the ORM.

Run by bench/django_helpdesk.py with the peer's Python, DJANGO_SETTINGS_MODULE and the
project on the path; reads the shape as JSON on stdin and prints the ids it made as JSON.
One queue; staff and customers as Django users (the customers' addresses are their
tickets' submitter addresses); per ticket the follow-up that opening a ticket makes (the
ticket's text, by its customer), then staff, customer and staff in turn, all public,
a minute apart. Users are saved one by one (their help-desk settings come from a signal),
tickets and follow-ups in bulk.
"""

import json
import sys
from datetime import timedelta

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from helpdesk.models import FollowUp, Queue, Ticket  # noqa: E402


def main() -> None:
    spec = json.load(sys.stdin)
    users = get_user_model()
    if users.objects.exists() or Ticket.objects.exists():
        raise SystemExit("the database is not empty")
    password = make_password(spec["password"])  # one hash for every account
    start = timezone.now() - timedelta(days=30)
    with transaction.atomic():
        staff = users(
            username=spec["staff"]["username"],
            email=spec["staff"]["email"],
            password=password,
            is_staff=True,
        )
        staff.save()
        customers = []
        for account in spec["customers"]:
            customer = users(username=account["username"], email=account["email"])
            customer.password = password
            customer.save()
            customers.append(customer)
        queue = Queue.objects.create(
            title="Support", slug="support", email_address="support@bench.invalid"
        )
        tickets = []
        for customer in customers:
            for index in range(spec["tickets_per_customer"]):
                tickets.append(
                    Ticket(
                        title=spec["topic"].format(number=index + 1),
                        queue=queue,
                        submitter_email=customer.email,
                        status=Ticket.OPEN_STATUS,
                        description=spec["ticket_text"],
                        priority=3,
                    )
                )
        Ticket.objects.bulk_create(tickets, batch_size=500)
        # created and modified are auto_now fields, which bulk_create sets to now: spread
        # them, ten minutes apart in id order, the last follow-up being the modification.
        step = timedelta(minutes=10)
        last = timedelta(minutes=spec["messages_per_ticket"] - 1)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE helpdesk_ticket SET created = %s + (id - %s) * %s, "
                "modified = %s + (id - %s) * %s + %s",
                [start, tickets[0].id, step, start, tickets[0].id, step, last],
            )
        followups = []
        owners = [c for c in customers for _ in range(spec["tickets_per_customer"])]
        for ticket, customer in zip(tickets, owners, strict=True):
            for turn in range(spec["messages_per_ticket"]):
                by_staff = turn % 2 == 1
                text = spec["ticket_text"]
                if turn:
                    text = spec["response_text"] if by_staff else spec["request_text"]
                followups.append(
                    FollowUp(
                        ticket=ticket,
                        date=start + (ticket.id - tickets[0].id) * step + timedelta(minutes=turn),
                        title="Ticket Opened" if turn == 0 else ticket.title,
                        comment=text,
                        public=True,
                        user=staff if by_staff else customer,
                    )
                )
        FollowUp.objects.bulk_create(followups, batch_size=1000)
    by_customer = {}
    for ticket, customer in zip(tickets, owners, strict=True):
        by_customer.setdefault(customer.email, []).append(ticket.id)
    json.dump(
        {
            "queue": queue.slug,
            "tickets": by_customer,
            "counts": {
                "users": users.objects.count(),
                "tickets": Ticket.objects.count(),
                "followups": FollowUp.objects.count(),
            },
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
