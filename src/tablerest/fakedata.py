"""Realistic fake people and short texts from small word lists; pure, seedable, no database.

::

    fake = FakeData(seed=42)
    fake.people(3, taken_names=set(), taken_emails=set())   # [("emma_jones", "emma_jones@...")]
    fake.message()                                          # "Just fixed an old bike today."
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence

FIRST_NAMES = (
    "ada", "adam", "aisha", "alex", "alice", "amara", "amelia", "ana", "anna", "arjun", "ava",
    "ben", "bruno", "carla", "carlos", "chen", "chloe", "chris", "clara", "daniel", "david",
    "diego", "elena", "eli", "ella", "emma", "eric", "eva", "fatima", "felix", "finn", "grace",
    "hana", "hannah", "hugo", "ibrahim", "ines", "isaac", "ivan", "jack", "jade", "james",
    "jana", "jin", "joao", "jonas", "jose", "julia", "kai", "karen", "kenji", "laila", "lars",
    "laura", "leo", "lena", "liam", "lina", "lucas", "lucia", "luis", "maya", "mateo", "max",
    "mei", "mia", "mila", "nadia", "nina", "noah", "nora", "olga", "omar", "oscar", "paul",
    "pedro", "priya", "rafael", "ravi", "rosa", "ruth", "sam", "sara", "sofia", "tariq", "theo",
    "tom", "uma", "vera", "victor", "wei", "yara", "yuki", "zara", "zoe",
)
LAST_NAMES = (
    "adams", "ali", "almeida", "bauer", "becker", "bianchi", "brown", "campbell", "chen",
    "clark", "costa", "cruz", "davis", "diaz", "dubois", "evans", "fischer", "fontaine",
    "garcia", "gomez", "green", "hall", "hansen", "hughes", "ito", "jansen", "johnson", "jones",
    "kaur", "khan", "kim", "king", "kowalski", "kumar", "lee", "lewis", "lopez", "martin",
    "meyer", "miller", "moreau", "moreno", "murphy", "nakamura", "nguyen", "novak", "okafor",
    "olsen", "park", "patel", "perez", "petrov", "reyes", "ricci", "roberts", "rossi", "sato",
    "schmidt", "silva", "singh", "smith", "suzuki", "tanaka", "taylor", "thomas", "walker",
    "wang", "weber", "white", "williams", "wilson", "wright", "yang", "young", "zhang",
)
DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")

TEMPLATES = (
    "just {past} {thing} {when}.",
    "anyone else {gerund} {things} {when}?",
    "{thing} {when} was {adj}.",
    "can't stop {gerund} {things}.",
    "hot take: {things} are {adj}.",
    "reading about {topic} {when}. so {adj}!",
    "thinking about {gerund} {thing} {when}.",
    "note to self: stop {gerund} {things} {when}.",
    "{greeting} who's up for {gerund} {thing} {when}?",
    "new post about {topic} is up.",
    "today's plan: {gerund} {thing}, then more {topic}.",
    "best part of {day}: {gerund} {thing}.",
    "{past} {thing} {when} and it was {adj}.",
    "if you like {topic}, try {gerund} {thing}.",
    "{day} means {gerund} {thing}.",
)
WORDS = {
    "past": ("finished", "started", "tried", "found", "fixed", "cooked", "painted", "watched",
             "built", "lost", "ordered", "planted", "repaired", "sketched", "baked"),
    "gerund": ("reading", "fixing", "cooking", "painting", "watching", "building", "planning",
               "cleaning", "writing", "sketching", "baking", "learning", "sharing"),
    "thing": ("a new recipe", "an old bike", "my garden", "the kitchen sink", "a short story",
              "a tiny robot", "my first sourdough", "a jigsaw puzzle", "the bookshelf",
              "a vegetable soup", "a road trip", "a birthday cake", "a podcast episode",
              "the balcony", "a wooden chair", "a chess opening", "a playlist", "a birdhouse"),
    "things": ("podcasts", "mornings", "rainy days", "board games", "spreadsheets", "trains",
               "houseplants", "long walks", "sandwiches", "cats", "deadlines", "sunsets"),
    "when": ("this morning", "today", "last night", "over the weekend", "after work",
             "before breakfast", "again", "at last", "on the train", "in the rain"),
    "adj": ("great", "underrated", "surprisingly fun", "a bit much", "wonderful", "exhausting",
            "worth it", "overrated", "relaxing", "hilarious"),
    "topic": ("python", "gardening", "coffee", "cycling", "databases", "bread baking",
              "birdwatching", "jazz", "photography", "chess", "climbing", "astronomy"),
    "day": ("monday", "the weekend", "my day", "friday", "the week", "summer", "winter"),
    "greeting": ("hey all!", "morning!", "hi friends.", "hello world."),
}
_SLOTS = {
    template: tuple(name for _, name, _, _ in string.Formatter().parse(template) if name)
    for template in TEMPLATES
}


class FakeData:
    """Seeded generators of unique people and message texts."""

    def __init__(self, seed: int | None = None) -> None:
        self.random = random.Random(seed)

    def people(self, count: int, taken_names: set[str], taken_emails: set[str],
               name_length: int = 64) -> list[tuple[str, str]]:
        """``count`` (name, email) pairs, unique among themselves and the ``taken`` ones.

        ``taken_names`` and ``taken_emails`` (lower case) grow with what is returned.
        """
        rng, counters = self.random, dict[str, int]()
        result = []
        for _ in range(count):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            pattern = rng.random()
            if pattern < 0.4:
                base = f"{first}_{last}"
            elif pattern < 0.7:
                base = f"{first}.{last}"
            elif pattern < 0.9:
                base = f"{first}{last}"
            else:
                base = f"{first[0]}{last}"
            base = base[: max(name_length - 8, 1)]
            domain = rng.choice(DOMAINS)
            number = counters.get(base, 0)
            while True:
                number += 1
                name = base if number == 1 else f"{base}{number}"
                email = f"{name}@{domain}"
                if name not in taken_names and email not in taken_emails:
                    break
            counters[base] = number
            taken_names.add(name)
            taken_emails.add(email)
            result.append((name, email))
        return result

    def sentence(self) -> str:
        template = self.random.choice(TEMPLATES)
        text = template.format(**{slot: self.random.choice(WORDS[slot])
                                  for slot in _SLOTS[template]})
        return text[0].upper() + text[1:]

    def message(self) -> str:
        """One to three sentences, sometimes with a hashtag."""
        roll = self.random.random()
        count = 1 if roll < 0.6 else 2 if roll < 0.9 else 3
        text = " ".join(self.sentence() for _ in range(count))
        if self.random.random() < 0.2:
            text += " #" + self.random.choice(WORDS["topic"]).replace(" ", "")
        return text

    def messages(self, count: int, pool: Sequence[str] | None = None) -> list[str]:
        """``count`` texts, drawn from ``pool`` (made by :meth:`message_pool`) when given."""
        if pool is None:
            return [self.message() for _ in range(count)]
        return self.random.choices(pool, k=count)

    def message_pool(self, size: int) -> list[str]:
        """Distinct-looking texts to draw many messages from quickly."""
        return [self.message() for _ in range(size)]
