-- Group commit: appends to different streams, made concurrently in one
-- process, run as one statement in one transaction (one round trip, one
-- commit), each with its own expected-version check, idempotency and result.
-- Every append goes through es_append_group, a group of one included, so the
-- append is written once (src/group.rs sends them).

-- One append of a group: the relative version bump of its stream row, its
-- events, its idempotency record. Returns its last version and positions, or
-- no row when refused (the expectation failed, or the stream's last writer
-- drew a younger transaction id: see es_streams.last_xid; the caller tells
-- the two apart). The caller took the appender mark and drew p_xid first.
-- A unique violation (a concurrent first use of the key, or rows written
-- around the store) raises; the group catches it for this append alone.
CREATE FUNCTION es_append_one(
    p_stream text, p_count int8, p_kind int2, p_expected int8, p_xid xid8,
    p_key text, p_fingerprint bytea,
    p_event_ids uuid[], p_event_types text[], p_schema_versions int4[],
    p_payloads bytea[], p_recorded_at timestamptz[], p_correlation_ids uuid[],
    p_causation_ids uuid[], p_idempotency_keys text[], p_headers text[]
) RETURNS TABLE (last_version int8, positions int8[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_base int8;
BEGIN
    CASE p_kind
    WHEN 0 THEN -- any
        INSERT INTO es_streams AS s (stream_id, version, last_xid)
        VALUES (p_stream, p_count, p_xid)
        ON CONFLICT (stream_id) DO UPDATE
        SET version = s.version + p_count, last_xid = p_xid
        WHERE s.last_xid < p_xid
        RETURNING s.version - p_count INTO v_base;
    WHEN 1 THEN -- no stream
        INSERT INTO es_streams (stream_id, version, last_xid)
        VALUES (p_stream, p_count, p_xid)
        ON CONFLICT (stream_id) DO NOTHING
        RETURNING 0 INTO v_base;
    WHEN 2 THEN -- exact
        UPDATE es_streams SET version = version + p_count, last_xid = p_xid
        WHERE stream_id = p_stream AND version = p_expected AND last_xid < p_xid
        RETURNING version - p_count INTO v_base;
    ELSE -- stream exists
        UPDATE es_streams SET version = version + p_count, last_xid = p_xid
        WHERE stream_id = p_stream AND last_xid < p_xid
        RETURNING version - p_count INTO v_base;
    END CASE;
    IF v_base IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH ins AS (
        INSERT INTO es_events (
            transaction_id, stream_id, version, event_id, event_type, schema_version,
            payload, recorded_at, correlation_id, causation_id, idempotency_key, headers
        )
        SELECT p_xid, p_stream, v_base + e.ord, e.event_id, e.event_type, e.schema_version,
               e.payload, e.recorded_at, e.correlation_id, e.causation_id,
               e.idempotency_key, e.headers::jsonb
        FROM UNNEST(
            p_event_ids, p_event_types, p_schema_versions, p_payloads, p_recorded_at,
            p_correlation_ids, p_causation_ids, p_idempotency_keys, p_headers
        ) WITH ORDINALITY AS e(
            event_id, event_type, schema_version, payload, recorded_at,
            correlation_id, causation_id, idempotency_key, headers, ord
        )
        RETURNING es_events.position, es_events.version
    ),
    appended AS (
        SELECT max(ins.version) AS last_version,
               array_agg(ins.position ORDER BY ins.version) AS positions
        FROM ins
    ),
    claim AS (
        INSERT INTO es_idempotency (
            stream_id, idempotency_key, fingerprint, last_version, positions, transaction_id
        )
        SELECT p_stream, p_key, p_fingerprint, a.last_version, a.positions, p_xid
        FROM appended a
        WHERE p_key IS NOT NULL
        RETURNING 1
    )
    SELECT a.last_version, a.positions FROM appended a;
END;
$$;

-- A group of appends, sorted by stream (every group takes its streams' row
-- locks in the same order, so two groups never deadlock), at most one per
-- stream (they share one transaction id, and a stream's appends must draw
-- increasing ones). Member i has p_counts[i] events, stored consecutively in
-- the event arrays; p_kinds[i] is 0 any, 1 no stream, 2 exact (p_expected[i]),
-- 3 stream exists. One row per member, by ordinal:
--   'appended'     last_version, positions, xid;
--   'deduplicated' the key's first result and its fingerprint;
--   'refused'      the expectation failed or the order race was lost;
--   'taken'        a unique violation, detail names the constraint.
-- In a group of more than one, each member runs in a subtransaction of its
-- own, so that one member's unique violation undoes that member alone.
CREATE FUNCTION es_append_group(
    p_streams text[], p_counts int4[], p_kinds int2[], p_expected int8[],
    p_keys text[], p_fingerprints bytea[],
    p_event_ids uuid[], p_event_types text[], p_schema_versions int4[],
    p_payloads bytea[], p_recorded_at timestamptz[], p_correlation_ids uuid[],
    p_causation_ids uuid[], p_idempotency_keys text[], p_headers text[],
    p_mark_namespace int4, p_mark_object int4
) RETURNS TABLE (
    ord int4, outcome text, last_version int8, positions int8[], xid text,
    fingerprint bytea, detail text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_members int4 := coalesce(array_length(p_streams, 1), 0);
    v_xid xid8;
    v_lo int4 := 1;
    v_hi int4;
    v_last int8;
    v_positions int8[];
    v_constraint text;
    i int4;
BEGIN
    FOR i IN 1 .. v_members LOOP
        v_hi := v_lo + p_counts[i] - 1;
        ord := i;
        -- A key already used: its first result, and nothing written.
        IF p_keys[i] IS NOT NULL THEN
            SELECT r.last_version, r.positions, r.transaction_id::text, r.fingerprint
            INTO last_version, positions, xid, fingerprint
            FROM es_idempotency r
            WHERE r.stream_id = p_streams[i] AND r.idempotency_key = p_keys[i];
            IF FOUND THEN
                outcome := 'deduplicated';
                detail := NULL;
                RETURN NEXT;
                v_lo := v_hi + 1;
                CONTINUE;
            END IF;
        END IF;
        -- The appender mark, then the transaction id, before the first write
        -- and outside any subtransaction (rolling one back would release the
        -- mark): see event_store/sql/read_horizon.sql.
        IF v_xid IS NULL THEN
            PERFORM pg_advisory_xact_lock_shared(p_mark_namespace, p_mark_object);
            v_xid := pg_current_xact_id();
        END IF;
        v_last := NULL;
        v_positions := NULL;
        v_constraint := NULL;
        IF v_members = 1 THEN
            SELECT a.last_version, a.positions INTO v_last, v_positions
            FROM es_append_one(
                p_streams[i], p_counts[i], p_kinds[i], p_expected[i], v_xid,
                p_keys[i], p_fingerprints[i],
                p_event_ids[v_lo:v_hi], p_event_types[v_lo:v_hi],
                p_schema_versions[v_lo:v_hi], p_payloads[v_lo:v_hi],
                p_recorded_at[v_lo:v_hi], p_correlation_ids[v_lo:v_hi],
                p_causation_ids[v_lo:v_hi], p_idempotency_keys[v_lo:v_hi],
                p_headers[v_lo:v_hi]
            ) a;
        ELSE
            BEGIN
                SELECT a.last_version, a.positions INTO v_last, v_positions
                FROM es_append_one(
                    p_streams[i], p_counts[i], p_kinds[i], p_expected[i], v_xid,
                    p_keys[i], p_fingerprints[i],
                    p_event_ids[v_lo:v_hi], p_event_types[v_lo:v_hi],
                    p_schema_versions[v_lo:v_hi], p_payloads[v_lo:v_hi],
                    p_recorded_at[v_lo:v_hi], p_correlation_ids[v_lo:v_hi],
                    p_causation_ids[v_lo:v_hi], p_idempotency_keys[v_lo:v_hi],
                    p_headers[v_lo:v_hi]
                ) a;
            EXCEPTION WHEN unique_violation THEN
                GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
                v_constraint := coalesce(v_constraint, '');
            END;
        END IF;
        last_version := v_last;
        positions := v_positions;
        fingerprint := NULL;
        detail := v_constraint;
        IF v_constraint IS NOT NULL THEN
            outcome := 'taken';
            xid := NULL;
        ELSIF v_last IS NULL THEN
            outcome := 'refused';
            xid := NULL;
        ELSE
            outcome := 'appended';
            xid := v_xid::text;
        END IF;
        RETURN NEXT;
        v_lo := v_hi + 1;
    END LOOP;
END;
$$;
