"""How customers feel along the journey: voices, sentiment, NPS and CSAT per designed stage.

Definitions (docs/metrics.md):

* a **voice** is a customer touchpoint that carries feedback: a sentiment score (a support
  reply, a CSAT or survey comment), an NPS answer (``feedback.survey_answered`` with
  ``score``) or a CSAT rating (``support.csat_rated`` with ``score`` good / bad);
* a voice belongs to the **stage the person was in when they spoke**: the last stage entered
  at or before it, in event order ``(time, seq)``, read from ``stage_entries`` (written by
  :mod:`journeymine.analyses.funnel`, never recomputed here). Voices before any stage count in
  no stage;
* ``sentiment_mean`` is the mean VADER compound over the voices with a sentiment, with a 95%
  Student-t interval ``mean ± t(0.975, n-1) · sd / sqrt(n)`` (sample sd), clipped to the
  score's range [-1, 1]; no interval for fewer than two scores;
* ``nps`` = % promoters (9-10) - % detractors (0-6) of the NPS answers, in points (-100..100);
* ``csat`` = % of CSAT ratings that are good (0..100).

Aggregation is SQL in DuckDB; only the per-stage rows (a handful) leave it for the t quantile.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable

import duckdb
import pandas as pd
from scipy import stats

from journeymine.ingest.sources import survey, typeform, zendesk
from journeymine.privacy import scrub
from journeymine.spec import JourneySpec, step_labels
from journeymine.warehouse import replace_table

CASE_COLUMNS = {"person": "person_id", "account": "account_id"}
ALL_SOURCES = "all"
SENTIMENT_RANGE = (-1.0, 1.0)
CONFIDENCE = 0.95
FEELINGS_COLUMNS = [
    "source",
    "position",
    "stage",
    "voices",
    "people",
    "sentiment_n",
    "sentiment_mean",
    "sentiment_ci_low",
    "sentiment_ci_high",
    "negative_share",
    "nps_answers",
    "promoters",
    "detractors",
    "nps",
    "csat_answers",
    "csat",
]

VOICES = """
CREATE OR REPLACE TEMP TABLE jm_voices AS
WITH voices AS (
    SELECT event_id, person_id, {case_column} AS case_key, source, activity, occurred_at, seq,
           TRY_CAST(json_extract(attributes, '$.sentiment') AS DOUBLE) AS sentiment,
           json_extract_string(attributes, '$.sentiment_label') AS sentiment_label,
           CASE WHEN activity = 'feedback.survey_answered'
                THEN TRY_CAST(json_extract(attributes, '$.score') AS INTEGER) END AS nps_score,
           CASE WHEN activity = 'support.csat_rated'
                 AND json_extract_string(attributes, '$.score') IN ('good', 'bad')
                THEN json_extract_string(attributes, '$.score') = 'good' END AS csat_good
    FROM touchpoints
    WHERE actor = 'customer' AND {case_column} IS NOT NULL
)
SELECT v.*, s.pos, s.stage
FROM voices v
JOIN stage_entries s
  ON s.case_key = v.case_key
 AND (s.entered_at < v.occurred_at OR (s.entered_at = v.occurred_at AND s.entered_seq <= v.seq))
WHERE v.sentiment IS NOT NULL OR v.nps_score IS NOT NULL OR v.csat_good IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY v.event_id
                           ORDER BY s.entered_at DESC, s.entered_seq DESC, s.pos DESC) = 1
"""

# Sentiments are summed in event order: a float sum depends on its order, and DuckDB's threads
# would otherwise change the last digits from one run to the next.
STAGE_AGGREGATES = """
SELECT {source} AS source, pos, count(*) AS voices, count(DISTINCT person_id) AS people,
       count(sentiment) AS sentiment_n, avg(sentiment ORDER BY event_id) AS sentiment_mean,
       stddev_samp(sentiment ORDER BY event_id) AS sentiment_sd,
       count(*) FILTER (WHERE sentiment_label = 'negative') AS negative_voices,
       count(nps_score) AS nps_answers,
       count(*) FILTER (WHERE nps_score >= 9) AS promoters,
       count(*) FILTER (WHERE nps_score <= 6) AS detractors,
       count(csat_good) AS csat_answers,
       count(*) FILTER (WHERE csat_good) AS csat_good
FROM jm_voices GROUP BY ALL
"""


def stage_labels(spec: JourneySpec) -> list[str]:
    """Designed stages in order, alternatives joined by `` | `` as the funnel labels them."""
    return step_labels(spec)


def build_voices(con: duckdb.DuckDBPyConnection, case: str = "person") -> str:
    """Every voice with the stage its person was in (TEMP table ``jm_voices``); its name."""
    if case not in CASE_COLUMNS:
        raise ValueError(f"feelings need a person or account case, not {case!r}")
    con.execute(VOICES.format(case_column=CASE_COLUMNS[case]))
    return "jm_voices"


def t_interval(n: int, mean: float, sd: float) -> tuple[float, float]:
    """95% Student-t interval of a mean, clipped to the sentiment range; NaN below two."""
    if n < 2 or math.isnan(sd):
        return math.nan, math.nan
    half = float(stats.t.ppf((1 + CONFIDENCE) / 2, n - 1)) * sd / math.sqrt(n)
    low, high = SENTIMENT_RANGE
    return max(low, mean - half), min(high, mean + half)


def _percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else math.nan


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    """Intervals, NPS, CSAT and shares from the SQL counts."""
    ci = [
        t_interval(int(n), m, s)
        for n, m, s in zip(frame.sentiment_n, frame.sentiment_mean, frame.sentiment_sd, strict=True)
    ]
    frame["sentiment_ci_low"] = [lo for lo, _ in ci]
    frame["sentiment_ci_high"] = [hi for _, hi in ci]
    frame["negative_share"] = [
        _percent(k, n) / 100 for k, n in zip(frame.negative_voices, frame.sentiment_n, strict=True)
    ]
    frame["nps"] = [
        _percent(p - d, n)
        for p, d, n in zip(frame.promoters, frame.detractors, frame.nps_answers, strict=True)
    ]
    frame["csat"] = [
        _percent(g, n) for g, n in zip(frame.csat_good, frame.csat_answers, strict=True)
    ]
    return frame


def compute_feelings(con: duckdb.DuckDBPyConnection, spec: JourneySpec) -> pd.DataFrame:
    """One row per source (``all`` first, then each feedback source) and designed stage, every
    stage present (0 voices where nobody spoke): the emotional curve along the journey."""
    build_voices(con, spec.case)
    sql = " UNION ALL ".join(
        (
            STAGE_AGGREGATES.format(source=f"'{ALL_SOURCES}'"),
            STAGE_AGGREGATES.format(source="source"),
        )
    )
    counts = con.execute(sql).df()
    labels = stage_labels(spec)
    sources = [ALL_SOURCES, *sorted(set(counts.source) - {ALL_SOURCES})]
    grid = pd.DataFrame(
        [(src, pos, label) for src in sources for pos, label in enumerate(labels)],
        columns=["source", "position", "stage"],
    )
    frame = grid.merge(
        counts.rename(columns={"pos": "position"}), on=["source", "position"], how="left"
    )
    counted = [
        c for c in counts.columns if c not in ("source", "pos", "sentiment_mean", "sentiment_sd")
    ]
    frame[counted] = frame[counted].fillna(0).astype("int64")
    frame[["sentiment_mean", "sentiment_sd"]] = frame[["sentiment_mean", "sentiment_sd"]].astype(
        "float64"
    )
    return _finish(frame)[FEELINGS_COLUMNS]


def write_feelings(con: duckdb.DuckDBPyConnection, spec: JourneySpec) -> pd.DataFrame:
    """Compute and store the ``feelings`` table; return it."""
    frame = compute_feelings(con, spec)
    replace_table(con, "feelings", frame)
    return frame


# --- quotes -------------------------------------------------------------------------------

# 7+ digits, optionally with a leading + and separators: phone numbers (and, erring on the
# safe side, long digit runs such as dates written with dashes).
PHONE_PATTERN = re.compile(r"\+?\d(?:[\s().-]*\d){6,}")
# A capitalised name after a greeting, sign-off or self-introduction ("Hi Anna", "Thanks,
# Bob Jones", "my name is Eve"): the cue is matched in any case, the name only capitalised.
NAME_CUE_PATTERN = re.compile(
    r"(?i:\b(?:hi|hello|hey|dear|thanks|thank you|regards|cheers|best|sincerely|"
    r"my name is|i am|i'm|this is|ask for|call me)\b)([\s,:-]+)"
    r"([A-Z][a-z'’-]+(?:\s+[A-Z][a-z'’-]+)?)"
)
EMAIL_MARK, PHONE_MARK, NAME_MARK = "[email]", "[phone]", "[name]"
KNOWN_NAMES = """
SELECT DISTINCT name FROM (
    SELECT json_extract_string(raw, '$.name') AS name FROM raw_rows
    WHERE source = 'zendesk' AND record_key LIKE 'user:%'
    UNION ALL
    SELECT json_extract_string(raw, '$.hidden.' || k) FROM raw_rows,
           (VALUES ('name'), ('first_name'), ('last_name')) AS keys(k)
    WHERE source = 'typeform'
) WHERE name IS NOT NULL
"""


def known_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Name words the raw layer knows (Zendesk users, Typeform hidden name fields)."""
    names = (row[0] for row in con.execute(KNOWN_NAMES).fetchall())
    return {word for name in names for word in re.findall(r"[^\W\d_]{2,}", name)}


def redact(text: str, names: Iterable[str] = ()) -> str:
    """``text`` without emails, phone numbers and names (known ones, and after cues)."""
    text = scrub(text, EMAIL_MARK)
    text = PHONE_PATTERN.sub(PHONE_MARK, text)
    text = NAME_CUE_PATTERN.sub(lambda m: m.group(0)[: m.start(2) - m.start(0)] + NAME_MARK, text)
    for name in sorted(set(names), key=len, reverse=True):
        text = re.sub(rf"\b{re.escape(name)}\b", NAME_MARK, text, flags=re.IGNORECASE)
    return text


TextReader = Callable[[str, str], str | None]
TEXT_READERS: dict[str, TextReader] = {
    "zendesk": zendesk.feedback_text,
    "typeform": typeform.feedback_text,
    "survey": survey.feedback_text,
}

QUOTE_CANDIDATES = """
WITH ranked AS (
    SELECT v.*, r.raw, e.event_key,
           row_number() OVER (PARTITION BY v.pos ORDER BY v.sentiment, v.occurred_at, v.event_id)
               AS most_negative,
           row_number() OVER (PARTITION BY v.pos ORDER BY v.sentiment DESC, v.occurred_at,
                                                         v.event_id) AS most_positive
    FROM jm_voices v
    JOIN touchpoints t ON t.event_id = v.event_id
    JOIN raw_events e ON e.seq = t.event_id
    JOIN raw_rows r ON r.file = t.file AND r.line = t.line
    WHERE v.sentiment IS NOT NULL AND v.sentiment_label IN ('negative', 'positive')
)
SELECT pos, stage, person_id, occurred_at, source, activity, sentiment, sentiment_label,
       event_key, raw
FROM ranked
WHERE (sentiment_label = 'negative' AND most_negative <= $n)
   OR (sentiment_label = 'positive' AND most_positive <= $n)
ORDER BY pos, sentiment, occurred_at, event_id
"""


def feeling_quotes(con: duckdb.DuckDBPyConnection, n: int, case: str = "person") -> pd.DataFrame:
    """Evidence: per stage the ``n`` most negative and ``n`` most positive voices, in the
    customer's words read back from the raw layer, with emails, phones and names removed."""
    build_voices(con, case)
    rows = con.execute(QUOTE_CANDIDATES, {"n": n}).df()
    names = known_names(con)

    def quote(source: str, raw: str, key: str) -> str | None:
        reader = TEXT_READERS.get(source)
        text = reader(raw, key) if reader else None
        return redact(text, names) if text else None

    rows["quote"] = [
        quote(s, r, k) for s, r, k in zip(rows.source, rows.raw, rows.event_key, strict=True)
    ]
    rows = rows.rename(columns={"pos": "position"}).dropna(subset=["quote"])
    return rows.drop(columns=["raw", "event_key"]).reset_index(drop=True)


# --- what comes before negative feedback -------------------------------------------------------

PRECURSORS = """
WITH ordered AS (
    SELECT actor,
           json_extract_string(attributes, '$.sentiment_label') AS label,
           json_extract(attributes, '$.sentiment') IS NOT NULL AS scored,
           lag(activity) OVER (PARTITION BY person_id ORDER BY occurred_at, seq) AS before
    FROM touchpoints WHERE person_id IS NOT NULL
), voices AS (
    SELECT before, label = 'negative' AS negative FROM ordered
    WHERE actor = 'customer' AND scored AND before IS NOT NULL
)
SELECT before AS activity, count(*) AS voices, count(*) FILTER (WHERE negative) AS negative,
       count(*) FILTER (WHERE negative) / count(*) AS negative_share,
       (count(*) FILTER (WHERE negative) / count(*))
         / nullif((SELECT count(*) FILTER (WHERE negative) / count(*) FROM voices), 0) AS lift
FROM voices GROUP BY before
ORDER BY negative DESC, negative_share DESC, activity
LIMIT $top
"""


def feeling_precursors(con: duckdb.DuckDBPyConnection, top: int = 10) -> pd.DataFrame:
    """The touchpoints that come just before negative feedback: for each activity, how many
    scored customer voices came right after it (same person, event order), how many of them
    were negative, that share, and its lift over the share among all scored voices."""
    return con.execute(PRECURSORS, {"top": top}).df()
