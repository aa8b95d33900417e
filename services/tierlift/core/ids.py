"""Identifier formats shared by the API and the ledger."""

import re

# tenants, workloads, regions: lowercase letters, digits and '-', 2 to 63 characters
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
