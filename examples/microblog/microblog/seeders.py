"""The microblog's seed: ``tablerest db seed`` runs ``DatabaseSeeder``.

Three users (twittor, john, jane; password ``twittor-demo``), one message each, and a circle of
follows: twittor follows john, john follows jane, jane follows twittor. Every seeder skips
what is already there, so seeding twice changes nothing.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select

from tablerest.seeding import Seeder

from .models import Message, User, follows

PASSWORD = "twittor-demo"
USERS = (
    ("twittor", "twittor@twittor.com"),
    ("john", "john@doe.com"),
    ("jane", "jane@doe.com"),
)
MESSAGES = {
    "twittor": "Twittor's message.",
    "john": "John's message.",
    "jane": "Jane's message.",
}
FOLLOWS = (("twittor", "john"), ("john", "jane"), ("jane", "twittor"))


def _users_by_name(seeder: Seeder) -> dict[str, User]:
    names = [name for name, _ in USERS]
    return {user.name: user
            for user in seeder.session.scalars(select(User).where(User.name.in_(names)))}


class UsersSeeder(Seeder):
    def run(self) -> None:
        existing = _users_by_name(self)
        for name, email in USERS:
            if name not in existing:
                self.session.add(User(name=name, email=email, password=PASSWORD))


class MessagesSeeder(Seeder):
    def run(self) -> None:
        users = _users_by_name(self)
        for name, _ in USERS:
            user, content = users[name], MESSAGES[name]
            posted = self.session.scalar(
                select(Message.id).where(Message.user_id == user.id, Message.content == content))
            if posted is None:
                self.session.add(Message(content=content, author=user))


class FollowsSeeder(Seeder):
    def run(self) -> None:
        users = _users_by_name(self)
        now = dt.datetime.now(dt.UTC)
        for follower, followed in FOLLOWS:
            pair = (users[follower].id, users[followed].id)
            linked = self.session.execute(select(follows.c.id).where(
                follows.c.follower_id == pair[0], follows.c.followed_id == pair[1])).first()
            if linked is None:
                self.session.execute(insert(follows).values(
                    follower_id=pair[0], followed_id=pair[1], created_at=now, updated_at=now))


class DatabaseSeeder(Seeder):
    def run(self) -> None:
        self.call(UsersSeeder, MessagesSeeder, FollowsSeeder)
