"""The one query description, its parsers (URL, JSON body) and its compiler to SQL."""
