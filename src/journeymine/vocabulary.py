"""The words every layer shares: identity node types and actors.

The parsers emit them, identity stitching and the touchpoints read them; declared here, below
every layer, so that canonical code does not reach into the parsers' private helpers.
"""

from __future__ import annotations

# Identity node types. An edge links two nodes; person nodes are merged into persons, account
# nodes into accounts (journeymine.canonical.identity).
ANONYMOUS_ID = "anonymous_id"  # Segment anonymousId / GA4 user_pseudo_id (cookie, device)
USER_ID = "user_id"  # the product's own user id (Segment userId, GA4 user_id, metadata)
EMAIL = "email"  # normalised email address (trimmed, lower case)
SF_LEAD = "sf_lead"  # Salesforce Lead Id, always the 18-character form
SF_CONTACT = "sf_contact"  # Salesforce Contact Id (18 chars)
STRIPE_CUSTOMER = "stripe_customer"  # Stripe customer id (cus_...)
PERSON_NODE_TYPES = (ANONYMOUS_ID, USER_ID, EMAIL, SF_LEAD, SF_CONTACT, STRIPE_CUSTOMER)

SF_ACCOUNT = "sf_account"  # Salesforce Account Id (18 chars)
SF_OPPORTUNITY = "sf_opportunity"  # Salesforce Opportunity Id (18 chars); belongs to an account
SEGMENT_GROUP = "segment_group"  # Segment group call groupId
ACCOUNT_NODE_TYPES = (SF_ACCOUNT, SEGMENT_GROUP)

CUSTOMER = "customer"
COMPANY = "company"
