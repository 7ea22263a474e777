SELECT max(occurred_at) FROM touchpoints
-- parameters: None

-- next statement
-- One row per trigger of one follow-up rule: its response (the first company touchpoint of
-- the person strictly after it) and who owned the person at trigger time. Run by
-- followups._rule_rows, which fills in the placeholders: table (the touchpoints relation), who
-- (the actor after the spec's company_activities), triggered / responded / owner_record (an
-- event matches a glob of the triggers / responses / owner_records parameters). Events after
-- the cutoff parameter do not exist yet.
WITH events AS (SELECT *, CASE WHEN (len(list_filter($company::VARCHAR[], lambda g: activity GLOB g)) > 0) THEN 'company' ELSE actor END AS who FROM touchpoints WHERE occurred_at <= $cutoff),
triggers AS (
    SELECT person_id, event_id, occurred_at, seq, activity, owner AS own,
           owner_name AS own_name
    FROM events WHERE who = 'customer' AND (len(list_filter($triggers::VARCHAR[], lambda g: activity GLOB g)) > 0)
), responses AS (
    SELECT person_id, event_id, occurred_at, owner, owner_name, channel
    FROM events WHERE who = 'company' AND (len(list_filter($responses::VARCHAR[], lambda g: activity GLOB g)) > 0)
), records AS (  -- the CRM records that name who owns the person
    SELECT person_id, occurred_at, seq, owner, owner_name FROM events
    WHERE owner IS NOT NULL AND (len(list_filter($owner_records::VARCHAR[], lambda g: activity GLOB g)) > 0)
), first_record AS (
    SELECT person_id, arg_min(owner, (occurred_at, seq)) AS owner,
           arg_min(owner_name, (occurred_at, seq)) AS owner_name
    FROM records GROUP BY person_id
), answered AS (
    SELECT t.*, r.occurred_at AS responded_at, r.event_id AS response_event_id,
           r.owner AS responder, r.owner_name AS responder_name, r.channel
    FROM triggers t ASOF LEFT JOIN responses r
      ON t.person_id = r.person_id AND r.occurred_at > t.occurred_at
)
SELECT a.person_id, a.event_id AS trigger_event_id, a.activity AS trigger_activity,
       a.occurred_at AS triggered_at, a.responded_at, a.response_event_id,
       coalesce(a.own, b.owner, f.owner, a.responder) AS owner,
       coalesce(a.own_name, b.owner_name, f.owner_name, a.responder_name) AS owner_name,
       CASE WHEN a.own IS NOT NULL THEN 'trigger'
            WHEN b.owner IS NOT NULL THEN 'crm_at_trigger'
            WHEN f.owner IS NOT NULL THEN 'crm_after_trigger'
            WHEN a.responder IS NOT NULL THEN 'responder' END AS owner_source,
       a.responder, a.channel
FROM answered a
ASOF LEFT JOIN records b ON a.person_id = b.person_id AND b.occurred_at <= a.occurred_at
LEFT JOIN first_record f ON f.person_id = a.person_id
ORDER BY a.person_id, a.occurred_at, a.seq
-- parameters: {company: ['crm.*'], cutoff: 2026-01-05T00:00:00+00:00, owner_records: ['crm.lead_created', 'crm.lead_converted', 'crm.contact_created', 'crm.opportunity_created'], responses: ['crm.call_*', 'crm.meeting:*'], triggers: ['web.demo_requested']}
