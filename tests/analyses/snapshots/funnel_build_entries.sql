SELECT max(ts) FROM jm_touchpoint_log
-- parameters: None

-- next statement
CREATE OR REPLACE TEMP TABLE jm_entered (case_key BIGINT, pos INT, entered_at TIMESTAMPTZ, entered_seq BIGINT)
-- parameters: None

-- next statement
CREATE OR REPLACE TEMP TABLE jm_stage_entries (
            case_key BIGINT, pos INT, stage VARCHAR, entered_at TIMESTAMPTZ, entered_seq BIGINT,
            next_pos INT, converted_at TIMESTAMPTZ, status VARCHAR, time_to_convert_s DOUBLE,
            window_s DOUBLE)
-- parameters: None

-- next statement
SELECT * FROM jm_touchpoint_log LIMIT 0
-- parameters: None

-- next statement
CREATE OR REPLACE TEMP TABLE jm_marks AS 
        WITH src AS (SELECT l.case_key, l.ts, l.seq, l.activity, t.attributes FROM jm_touchpoint_log l LEFT JOIN touchpoints t ON t.event_id = l.seq WHERE (l.activity::VARCHAR GLOB 'web.page_view:*' OR l.activity::VARCHAR GLOB 'crm.meeting:*' OR l.activity::VARCHAR GLOB 'crm.opportunity_*' OR l.activity::VARCHAR GLOB 'billing.invoice_paid')), marked AS (
            SELECT case_key, ts, seq, unnest(list_filter([CASE WHEN ((activity::VARCHAR GLOB 'web.page_view:*')) THEN 0 END, CASE WHEN ((activity::VARCHAR GLOB 'crm.meeting:*')) THEN 1 END, CASE WHEN ((activity::VARCHAR GLOB 'crm.opportunity_*') AND coalesce(TRY_CAST((attributes->>'amount') AS DOUBLE) >= 1000.0, false)) THEN 2 END, CASE WHEN ((activity::VARCHAR GLOB 'billing.invoice_paid')) THEN 3 END], lambda x: x IS NOT NULL))::INT
                   AS stage_i
            FROM src WHERE (activity::VARCHAR GLOB 'web.page_view:*' OR activity::VARCHAR GLOB 'crm.meeting:*' OR activity::VARCHAR GLOB 'crm.opportunity_*' OR activity::VARCHAR GLOB 'billing.invoice_paid') AND ts <= $cutoff
        )
        SELECT case_key, ts, seq, stage_i, [0, 1, 2, 3][stage_i + 1]::INT AS pos,
               [1, 1, 1, 1][stage_i + 1]::INT AS occurrence,
               row_number() OVER (PARTITION BY case_key, stage_i ORDER BY ts, seq) AS n_all
        FROM marked
-- parameters: {cutoff: 2026-01-05T00:00:00+00:00}

-- next statement
INSERT INTO jm_entered SELECT case_key, $pos, min(ts), arg_min(seq, (ts, seq)) FROM jm_marks WHERE pos = $pos AND n_all >= occurrence GROUP BY case_key
-- parameters: {pos: 0}

-- next statement
-- One step of the stage funnel judged: for every entry, the next stage reached (at which
-- event) and the status. Run by funnel._judge_step, which fills in the placeholders: log (the
-- event log relation) and excluded (an event matches a glob of the exclude parameter).
CREATE OR REPLACE TEMP TABLE jm_step AS
WITH entered AS (
    SELECT case_key, min(entered_at) AS entered_at,
           arg_min(entered_seq, (entered_at, entered_seq)) AS entered_seq
    FROM jm_entered WHERE pos = $pos GROUP BY case_key
), counted AS (
    SELECT e.case_key, e.entered_at, e.entered_seq, m.pos, m.ts, m.seq, m.occurrence,
           row_number() OVER (PARTITION BY e.case_key, m.stage_i ORDER BY m.ts, m.seq)
               AS n
    FROM entered e JOIN jm_marks m ON m.case_key = e.case_key
    WHERE (CASE WHEN $strict THEN m.pos <> $pos
                ELSE list_contains($targets::INT[], m.pos) END)
      AND (m.ts > e.entered_at OR (m.ts = e.entered_at AND m.seq >= e.entered_seq))
      AND m.ts <= e.entered_at + to_seconds($window)
), hits AS (
    SELECT case_key,
           arg_min(pos, (ts, seq, NOT list_contains($targets::INT[], pos))) AS next_pos,
           min(ts) AS next_at, arg_min(seq, (ts, seq)) AS next_seq
    FROM counted
    WHERE n >= occurrence
      AND (ts > entered_at OR (ts = entered_at AND seq > entered_seq))
    GROUP BY case_key
), judged AS (
    SELECT e.*, h.next_pos,
           CASE WHEN list_contains($targets::INT[], h.next_pos)
                THEN h.next_at END AS converted_at,
           CASE WHEN list_contains($targets::INT[], h.next_pos)
                THEN h.next_seq END AS converted_seq,
           h.next_at IS NOT NULL AND NOT list_contains($targets::INT[], h.next_pos)
               AS out_of_order
    FROM entered e LEFT JOIN hits h USING (case_key)
), left_step AS (
    SELECT DISTINCT j.case_key FROM judged j JOIN jm_touchpoint_log l ON l.case_key = j.case_key
    WHERE NOT $last AND l.ts <= $cutoff
      AND (l.ts > j.entered_at OR (l.ts = j.entered_at AND l.seq > j.entered_seq))
      AND l.ts <= coalesce(j.converted_at, j.entered_at + to_seconds($window))
      AND (len(list_filter($exclude::VARCHAR[], lambda g: l.activity::VARCHAR GLOB g)) > 0)
)
SELECT case_key, $pos AS pos, $label AS stage, entered_at, entered_seq, next_pos,
       converted_at,
       CASE WHEN case_key IN (SELECT case_key FROM left_step) THEN 'excluded'
            WHEN converted_at IS NOT NULL THEN 'converted'
            WHEN $last THEN 'final'
            WHEN out_of_order THEN 'dropped'
            WHEN entered_at + to_seconds($window) > $cutoff THEN 'open'
            ELSE 'dropped' END AS status,
       epoch(converted_at) - epoch(entered_at) AS time_to_convert_s,
       CASE WHEN NOT $last THEN $window END AS window_s, converted_seq
FROM judged
-- parameters: {cutoff: 2026-01-05T00:00:00+00:00, exclude: ['crm.call_completed'], label: 'visit', last: False, pos: 0, strict: False, targets: [1, 2], window: 172800.0}

-- next statement
INSERT INTO jm_stage_entries SELECT * EXCLUDE (converted_seq) FROM jm_step ORDER BY case_key
-- parameters: None

-- next statement
INSERT INTO jm_entered SELECT case_key, next_pos, converted_at, converted_seq FROM jm_step WHERE status = 'converted'
-- parameters: None

-- next statement
-- One step of the stage funnel judged: for every entry, the next stage reached (at which
-- event) and the status. Run by funnel._judge_step, which fills in the placeholders: log (the
-- event log relation) and excluded (an event matches a glob of the exclude parameter).
CREATE OR REPLACE TEMP TABLE jm_step AS
WITH entered AS (
    SELECT case_key, min(entered_at) AS entered_at,
           arg_min(entered_seq, (entered_at, entered_seq)) AS entered_seq
    FROM jm_entered WHERE pos = $pos GROUP BY case_key
), counted AS (
    SELECT e.case_key, e.entered_at, e.entered_seq, m.pos, m.ts, m.seq, m.occurrence,
           row_number() OVER (PARTITION BY e.case_key, m.stage_i ORDER BY m.ts, m.seq)
               AS n
    FROM entered e JOIN jm_marks m ON m.case_key = e.case_key
    WHERE (CASE WHEN $strict THEN m.pos <> $pos
                ELSE list_contains($targets::INT[], m.pos) END)
      AND (m.ts > e.entered_at OR (m.ts = e.entered_at AND m.seq >= e.entered_seq))
      AND m.ts <= e.entered_at + to_seconds($window)
), hits AS (
    SELECT case_key,
           arg_min(pos, (ts, seq, NOT list_contains($targets::INT[], pos))) AS next_pos,
           min(ts) AS next_at, arg_min(seq, (ts, seq)) AS next_seq
    FROM counted
    WHERE n >= occurrence
      AND (ts > entered_at OR (ts = entered_at AND seq > entered_seq))
    GROUP BY case_key
), judged AS (
    SELECT e.*, h.next_pos,
           CASE WHEN list_contains($targets::INT[], h.next_pos)
                THEN h.next_at END AS converted_at,
           CASE WHEN list_contains($targets::INT[], h.next_pos)
                THEN h.next_seq END AS converted_seq,
           h.next_at IS NOT NULL AND NOT list_contains($targets::INT[], h.next_pos)
               AS out_of_order
    FROM entered e LEFT JOIN hits h USING (case_key)
), left_step AS (
    SELECT DISTINCT j.case_key FROM judged j JOIN jm_touchpoint_log l ON l.case_key = j.case_key
    WHERE NOT $last AND l.ts <= $cutoff
      AND (l.ts > j.entered_at OR (l.ts = j.entered_at AND l.seq > j.entered_seq))
      AND l.ts <= coalesce(j.converted_at, j.entered_at + to_seconds($window))
      AND (len(list_filter($exclude::VARCHAR[], lambda g: l.activity::VARCHAR GLOB g)) > 0)
)
SELECT case_key, $pos AS pos, $label AS stage, entered_at, entered_seq, next_pos,
       converted_at,
       CASE WHEN case_key IN (SELECT case_key FROM left_step) THEN 'excluded'
            WHEN converted_at IS NOT NULL THEN 'converted'
            WHEN $last THEN 'final'
            WHEN out_of_order THEN 'dropped'
            WHEN entered_at + to_seconds($window) > $cutoff THEN 'open'
            ELSE 'dropped' END AS status,
       epoch(converted_at) - epoch(entered_at) AS time_to_convert_s,
       CASE WHEN NOT $last THEN $window END AS window_s, converted_seq
FROM judged
-- parameters: {cutoff: 2026-01-05T00:00:00+00:00, exclude: ['crm.call_completed'], label: 'demo', last: False, pos: 1, strict: False, targets: [2], window: 172800.0}

-- next statement
INSERT INTO jm_stage_entries SELECT * EXCLUDE (converted_seq) FROM jm_step ORDER BY case_key
-- parameters: None

-- next statement
INSERT INTO jm_entered SELECT case_key, next_pos, converted_at, converted_seq FROM jm_step WHERE status = 'converted'
-- parameters: None

-- next statement
-- One step of the stage funnel judged: for every entry, the next stage reached (at which
-- event) and the status. Run by funnel._judge_step, which fills in the placeholders: log (the
-- event log relation) and excluded (an event matches a glob of the exclude parameter).
CREATE OR REPLACE TEMP TABLE jm_step AS
WITH entered AS (
    SELECT case_key, min(entered_at) AS entered_at,
           arg_min(entered_seq, (entered_at, entered_seq)) AS entered_seq
    FROM jm_entered WHERE pos = $pos GROUP BY case_key
), counted AS (
    SELECT e.case_key, e.entered_at, e.entered_seq, m.pos, m.ts, m.seq, m.occurrence,
           row_number() OVER (PARTITION BY e.case_key, m.stage_i ORDER BY m.ts, m.seq)
               AS n
    FROM entered e JOIN jm_marks m ON m.case_key = e.case_key
    WHERE (CASE WHEN $strict THEN m.pos <> $pos
                ELSE list_contains($targets::INT[], m.pos) END)
      AND (m.ts > e.entered_at OR (m.ts = e.entered_at AND m.seq >= e.entered_seq))
      AND m.ts <= e.entered_at + to_seconds($window)
), hits AS (
    SELECT case_key,
           arg_min(pos, (ts, seq, NOT list_contains($targets::INT[], pos))) AS next_pos,
           min(ts) AS next_at, arg_min(seq, (ts, seq)) AS next_seq
    FROM counted
    WHERE n >= occurrence
      AND (ts > entered_at OR (ts = entered_at AND seq > entered_seq))
    GROUP BY case_key
), judged AS (
    SELECT e.*, h.next_pos,
           CASE WHEN list_contains($targets::INT[], h.next_pos)
                THEN h.next_at END AS converted_at,
           CASE WHEN list_contains($targets::INT[], h.next_pos)
                THEN h.next_seq END AS converted_seq,
           h.next_at IS NOT NULL AND NOT list_contains($targets::INT[], h.next_pos)
               AS out_of_order
    FROM entered e LEFT JOIN hits h USING (case_key)
), left_step AS (
    SELECT DISTINCT j.case_key FROM judged j JOIN jm_touchpoint_log l ON l.case_key = j.case_key
    WHERE NOT $last AND l.ts <= $cutoff
      AND (l.ts > j.entered_at OR (l.ts = j.entered_at AND l.seq > j.entered_seq))
      AND l.ts <= coalesce(j.converted_at, j.entered_at + to_seconds($window))
      AND (len(list_filter($exclude::VARCHAR[], lambda g: l.activity::VARCHAR GLOB g)) > 0)
)
SELECT case_key, $pos AS pos, $label AS stage, entered_at, entered_seq, next_pos,
       converted_at,
       CASE WHEN case_key IN (SELECT case_key FROM left_step) THEN 'excluded'
            WHEN converted_at IS NOT NULL THEN 'converted'
            WHEN $last THEN 'final'
            WHEN out_of_order THEN 'dropped'
            WHEN entered_at + to_seconds($window) > $cutoff THEN 'open'
            ELSE 'dropped' END AS status,
       epoch(converted_at) - epoch(entered_at) AS time_to_convert_s,
       CASE WHEN NOT $last THEN $window END AS window_s, converted_seq
FROM judged
-- parameters: {cutoff: 2026-01-05T00:00:00+00:00, exclude: ['crm.call_completed'], label: 'big deal', last: False, pos: 2, strict: False, targets: [3], window: 172800.0}

-- next statement
INSERT INTO jm_stage_entries SELECT * EXCLUDE (converted_seq) FROM jm_step ORDER BY case_key
-- parameters: None

-- next statement
INSERT INTO jm_entered SELECT case_key, next_pos, converted_at, converted_seq FROM jm_step WHERE status = 'converted'
-- parameters: None

-- next statement
-- One step of the stage funnel judged: for every entry, the next stage reached (at which
-- event) and the status. Run by funnel._judge_step, which fills in the placeholders: log (the
-- event log relation) and excluded (an event matches a glob of the exclude parameter).
CREATE OR REPLACE TEMP TABLE jm_step AS
WITH entered AS (
    SELECT case_key, min(entered_at) AS entered_at,
           arg_min(entered_seq, (entered_at, entered_seq)) AS entered_seq
    FROM jm_entered WHERE pos = $pos GROUP BY case_key
), counted AS (
    SELECT e.case_key, e.entered_at, e.entered_seq, m.pos, m.ts, m.seq, m.occurrence,
           row_number() OVER (PARTITION BY e.case_key, m.stage_i ORDER BY m.ts, m.seq)
               AS n
    FROM entered e JOIN jm_marks m ON m.case_key = e.case_key
    WHERE (CASE WHEN $strict THEN m.pos <> $pos
                ELSE list_contains($targets::INT[], m.pos) END)
      AND (m.ts > e.entered_at OR (m.ts = e.entered_at AND m.seq >= e.entered_seq))
      AND m.ts <= e.entered_at + to_seconds($window)
), hits AS (
    SELECT case_key,
           arg_min(pos, (ts, seq, NOT list_contains($targets::INT[], pos))) AS next_pos,
           min(ts) AS next_at, arg_min(seq, (ts, seq)) AS next_seq
    FROM counted
    WHERE n >= occurrence
      AND (ts > entered_at OR (ts = entered_at AND seq > entered_seq))
    GROUP BY case_key
), judged AS (
    SELECT e.*, h.next_pos,
           CASE WHEN list_contains($targets::INT[], h.next_pos)
                THEN h.next_at END AS converted_at,
           CASE WHEN list_contains($targets::INT[], h.next_pos)
                THEN h.next_seq END AS converted_seq,
           h.next_at IS NOT NULL AND NOT list_contains($targets::INT[], h.next_pos)
               AS out_of_order
    FROM entered e LEFT JOIN hits h USING (case_key)
), left_step AS (
    SELECT DISTINCT j.case_key FROM judged j JOIN jm_touchpoint_log l ON l.case_key = j.case_key
    WHERE NOT $last AND l.ts <= $cutoff
      AND (l.ts > j.entered_at OR (l.ts = j.entered_at AND l.seq > j.entered_seq))
      AND l.ts <= coalesce(j.converted_at, j.entered_at + to_seconds($window))
      AND (len(list_filter($exclude::VARCHAR[], lambda g: l.activity::VARCHAR GLOB g)) > 0)
)
SELECT case_key, $pos AS pos, $label AS stage, entered_at, entered_seq, next_pos,
       converted_at,
       CASE WHEN case_key IN (SELECT case_key FROM left_step) THEN 'excluded'
            WHEN converted_at IS NOT NULL THEN 'converted'
            WHEN $last THEN 'final'
            WHEN out_of_order THEN 'dropped'
            WHEN entered_at + to_seconds($window) > $cutoff THEN 'open'
            ELSE 'dropped' END AS status,
       epoch(converted_at) - epoch(entered_at) AS time_to_convert_s,
       CASE WHEN NOT $last THEN $window END AS window_s, converted_seq
FROM judged
-- parameters: {cutoff: 2026-01-05T00:00:00+00:00, exclude: ['crm.call_completed'], label: 'paid', last: True, pos: 3, strict: False, targets: [], window: 0.0}

-- next statement
INSERT INTO jm_stage_entries SELECT * EXCLUDE (converted_seq) FROM jm_step ORDER BY case_key
-- parameters: None

-- next statement
UPDATE jm_stage_entries SET time_to_convert_s = NULL WHERE status = 'excluded'
-- parameters: None
