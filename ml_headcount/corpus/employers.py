"""Employers named in a CV's Experiences section, so keyword lists can avoid organisation names.

Profiles flattened from LinkedIn read `Experiences: Company (Title): description
| Company (Title): ... || Certifications: ...`; after cleaning (lowercased) the
company is what precedes ` (` in each `|`-separated entry of the first section.
A CV without that structure has no known employer.
"""

from __future__ import annotations

import re

_ENTRY_COMPANY = re.compile(r"\s*([^()|]{1,120}?) \(")
_SECTION = "experiences:"


def company_fields(text: str) -> list[str]:
    """The company of each Experiences entry, in order (cleaned text in, as written)."""
    start = text.find(_SECTION)
    if start < 0:
        return []
    section = text[start + len(_SECTION) :].split(" || ", 1)[0]
    companies = []
    for entry in section.split(" | "):
        match = _ENTRY_COMPANY.match(entry)
        if match and match.group(1).strip():
            companies.append(match.group(1).strip())
    return companies
