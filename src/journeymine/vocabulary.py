"""The words every layer shares: identity node types, actors, channels, the edge rules and
label kinds another layer reads by name.

The parsers emit them, identity stitching, the touchpoints and the analyses read them; declared
here, below every layer, so that a name is spelled once and canonical code does not reach into
the parsers' private helpers.
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

# Actors: who acted, the customer or the company (or ``unknown`` until a later page names the
# author of a support comment).
CUSTOMER = "customer"
COMPANY = "company"

# Channels: the system a touchpoint happened in (``touchpoints.channel``), one per source family.
# The journey grid draws one row per channel, in this order.
WEB = "web"  # Segment, GA4
EMAIL_CHANNEL = "email"  # SendGrid
CRM = "crm"  # Salesforce
BILLING = "billing"  # Stripe
SUPPORT = "support"  # Zendesk
SURVEY = "survey"  # Typeform, a survey tool's CSV
CHANNELS = (WEB, EMAIL_CHANNEL, CRM, BILLING, SUPPORT, SURVEY)

# Edge rules another layer reads by name (every other rule is a free-form label naming the
# parser's evidence, e.g. ``segment_identify_email``).
SF_CONTACT_ROLE = "sf_contact_role"  # a Salesforce OpportunityContactRole links contact and deal
SF_CONTACT_ROLE_PRIMARY = "sf_contact_role_primary"  # ... the deal's primary contact: it wins
SHARED_PERSON = "shared_person"  # two account nodes joined because one person links to both

# Label kinds (``raw_labels.kind``): what the id of a name is.
OWNER_LABEL = "owner"  # a company-side owner id (Salesforce user, Zendesk agent) -> display name
