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
    SELECT DISTINCT j.case_key FROM judged j JOIN {log} l ON l.case_key = j.case_key
    WHERE NOT $last AND l.ts <= $cutoff
      AND (l.ts > j.entered_at OR (l.ts = j.entered_at AND l.seq > j.entered_seq))
      AND l.ts <= coalesce(j.converted_at, j.entered_at + to_seconds($window))
      AND {excluded}
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
