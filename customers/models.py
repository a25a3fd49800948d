"""Customer records and the identities they have on each channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from customers.keys import name_key, phone_key
from switchboard.db import Base, UTCDateTime, utcnow


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(40), index=True)
    # The address a channel vouched for (customers.identify, SECURITY §2): unique, so two
    # first messages at once with the same verified address cannot make two customers.
    # Stays on a record merged away; lookups follow `merged_into_id` to the survivor.
    verified_email: Mapped[str | None] = mapped_column(String(320), unique=True)
    # Normalised name and phone (customers.keys), kept in step by the validators below, so
    # merge suggestions are indexed equality lookups.
    name_key: Mapped[str | None] = mapped_column(String(200), index=True)
    phone_key: Mapped[str | None] = mapped_column(String(40), index=True)
    locale: Mapped[str | None] = mapped_column(String(20))
    # The profile agents and admins keep (customers.profile): an admin-defined tier
    # ("vip"), a lifecycle stage, custom attributes (string keys -> scalars, size-capped);
    # tags are rows of `customer_tags`, notes rows of `customer_notes`.
    tier: Mapped[str | None] = mapped_column(String(50))
    lifecycle_stage: Mapped[str | None] = mapped_column(String(20))
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, server_default=text("'{}'")
    )
    # Set when merged into another record; conversations and identities moved there.
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    identities: Mapped[list[Identity]] = relationship(
        back_populates="customer", lazy="raise_on_sql"
    )

    @validates("name")
    def _keep_name_key(self, _key: str, value: str | None) -> str | None:
        self.name_key = name_key(value)
        return value

    @validates("phone")
    def _keep_phone_key(self, _key: str, value: str | None) -> str | None:
        self.phone_key = phone_key(value)
        return value


class Identity(Base):
    """Who the customer is on one inbox: a visitor id, a Telegram user id, an address."""

    __tablename__ = "customer_identities"
    __table_args__ = (
        UniqueConstraint("inbox_id", "external_id"),
        Index("ix_customer_identities_customer_id", "customer_id"),
        # Merge suggestions look an email address up across every inbox.
        Index("ix_customer_identities_external_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(200))
    reachable: Mapped[bool] = mapped_column(default=True)
    # The channel vouched for this identity (a signed visitor, an authenticated sender).
    verified: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    customer: Mapped[Customer] = relationship(back_populates="identities", lazy="raise_on_sql")


class CustomerTag(Base):
    """A tag on a customer (normalised as ticket tags are: lowercase, no spaces)."""

    __tablename__ = "customer_tags"
    # "Customers with tag X" is an index range; a customer's tags are the primary key's.
    __table_args__ = (Index("ix_customer_tags_tag", "tag", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(50), primary_key=True)


class CustomerNote(Base):
    """A staff note about a customer: never shown to the customer."""

    __tablename__ = "customer_notes"
    __table_args__ = (Index("ix_customer_notes_customer_id", "customer_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerMerge(Base):
    """One merge, with what moved, so an unmerge can put every row back."""

    __tablename__ = "customer_merges"

    id: Mapped[int] = mapped_column(primary_key=True)
    survivor_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    merged_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    moved: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undone_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
