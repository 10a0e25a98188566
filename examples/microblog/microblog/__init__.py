"""twittor: a microblog API (users, messages, follows) built only on tablerest's public API."""
